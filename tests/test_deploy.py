"""The cluster examples in deploy/: valid files whose commands the CLI accepts as written."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

from scaler.cli import app

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def parses(argv: list[str]) -> None:
    """Parse ``scaler ARGV`` as click would run it, without running it (unknown options,
    bad types and missing values raise)."""
    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="scaler")
    command = group.get_command(ctx, argv[0])
    assert command is not None, argv[0]
    command.make_context(argv[0], list(argv[1:]), parent=ctx)


def test_slurm_array_job_runs_one_search_worker_per_gpu():
    text = (DEPLOY / "slurm-search.sbatch").read_text()
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(DEPLOY / "slurm-search.sbatch")], check=True)
    directives = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --gres=gpu:1" in directives
    assert any(d.startswith("#SBATCH --array=") for d in directives)
    (line,) = [line for line in text.splitlines() if line.startswith("srun ")]
    argv = shlex.split(line.replace('"$SCALER_STORAGE"', "postgresql://u@h/db"))[1:]
    assert argv[:2] == ["scaler", "search"] and "--workers-per-gpu" in argv
    parses(argv[1:])


def test_kubernetes_indexed_job_runs_one_search_worker_per_pod():
    job = yaml.safe_load((DEPLOY / "k8s-search-job.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] >= 1
    (container,) = spec["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {e["name"] for e in container["env"]} == {"SCALER_STORAGE"}
    argv = container["command"]
    assert argv[:2] == ["scaler", "search"]
    parses(argv[1:])


def test_the_parser_check_can_fail():
    with pytest.raises(Exception, match="no-such-option"):
        parses(["search", "--no-such-option"])
