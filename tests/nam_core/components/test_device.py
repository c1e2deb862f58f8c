"""describe_device: the device a fit uses, and a warning when a granted GPU is not usable."""

import logging
import warnings

import pytest
import torch

from nam_core.errors import NAMInputError
from nam_core.validation import describe_device, granted_gpus


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"CUDA_VISIBLE_DEVICES": ""}, None),
    ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, None),
    ({"SLURM_GPUS_ON_NODE": "0"}, None),
    ({"SLURM_JOB_GPUS": "0,1"}, "SLURM_JOB_GPUS=0,1"),
    ({"CUDA_VISIBLE_DEVICES": "2", "SLURM_JOB_GPUS": "2"}, "CUDA_VISIBLE_DEVICES=2"),
])
def test_granted_gpus(env, expected):
    assert granted_gpus(env) == expected


def test_cpu_is_described_without_warning(caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.INFO, logger="nam_core.validation"):
            text = describe_device("cpu", env={})
    assert text.startswith(f"cpu (torch {torch.__version__}, ")
    assert f"fitting on {text}" in caplog.text


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine's torch sees a GPU")
def test_gpu_granted_but_invisible_to_torch_warns_and_runs_on_cpu():
    with pytest.warns(RuntimeWarning, match=r"SLURM_JOB_GPUS=0.*sees no CUDA device.*runs on the CPU"):
        text = describe_device("auto", env={"SLURM_JOB_GPUS": "0"})
    assert text.startswith("cpu")
    with pytest.warns(RuntimeWarning, match="fails"), pytest.raises(NAMInputError, match="cuda"):
        describe_device("cuda", env={})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_is_named():
    assert describe_device("auto", env={}).startswith("cuda:0 (")
