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
    nam_core's cheap check."""
    io = load_io_module()
    prefix = f"results/{config['cohort']}/"
    damaged = []
    for producer in workflow.rules:
        for pattern in producer.output:
            if not str(pattern).startswith(prefix):
                continue
            for path in glob.glob(re.sub(r"\{[^}]+\}", "*", str(pattern))):
                if os.path.isfile(path) and (problem := io.intact_problem(path)):
                    damaged.append((path, producer, problem, io))
    return damaged


def mark_damaged_outputs():
    """Make this run rebuild every damaged output and everything made from it.

    Snakemake decides what to rerun from modification times (and params, code, the set of
    inputs), never from content, and it rebuilds a missing intermediate only when a job that
    reads it must run anyway: deleting a damaged intermediate would leave the stale results
    downstream in place ("Nothing to be done"). Setting the damaged file's modification time
    to 1970 makes it older than the inputs of the rule that wrote it, so that rule reruns, and
    then every rule downstream (their input is new). An output of a rule without inputs (the
    demo cohort) is deleted instead; it is rebuilt when a job needs it. Runs at parse time,
    before the DAG is built, also in a dry run (the plan then shows the rebuild).
    """
    if not workflow.is_main_process:
        return
    for path, producer, problem, io in find_damaged_outputs():
        if producer.input:
            os.utime(path, (0, 0))
            action = f"marked it out of date: rule {producer.name} rebuilds it"
        else:
            os.remove(path)
            action = f"removed it: rule {producer.name} rebuilds it when it is needed"
        print(
            f"NAM: {path} {problem}; {action}, and every output made from it is rebuilt",
            file=sys.stderr,
        )


mark_damaged_outputs()
