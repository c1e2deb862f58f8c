import glob
import importlib.util


def load_io_module():
    """nam_core/io.py loaded on its own: it imports only the standard library (importing the
    nam_core package would import torch, two seconds at every parse)."""
    spec = importlib.util.spec_from_file_location("nam_io", ROOT / "nam_core" / "io.py")
    io_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(io_module)
    return io_module


def find_damaged_outputs():
    """(path, producer, problem, io module) of each existing output of this cohort that fails
    nam_core's cheap check.

    Snakemake decides what to rerun from modification times, the code, params and the set of
    inputs, never from content, so a truncated intermediate would be trusted (or its consumer
    would fail on it at every run). Checked here, at parse time, before the DAG is built.
    """
    io = load_io_module()
    prefix = f"results/{config['cohort']}/"
    damaged = []
    for producer in workflow.rules:
        for pattern in producer.output:
            if not str(pattern).startswith(prefix):
                continue
            for path in glob.glob(re.sub(r"\{[^}]+\}", "*", str(pattern))):
                if os.path.isfile(path) and (problem := io.intact_problem(path)):
                    damaged.append((path, producer.name, problem, io))
    return damaged


def remove_damaged_outputs():
    """Remove damaged outputs so that this run rebuilds them and what was made from them."""
    if not workflow.is_main_process:
        return
    for path, producer, problem, io in find_damaged_outputs():
        if workflow.dryrun:
            print(
                f"NAM: {io.corrupt_file_message(path, problem, producer)}; a real run removes it",
                file=sys.stderr,
            )
            continue
        os.remove(path)
        print(
            f"NAM: removed {path}, which {problem}; {producer} rebuilds it in this run, "
            "and every output made from it",
            file=sys.stderr,
        )


remove_damaged_outputs()
