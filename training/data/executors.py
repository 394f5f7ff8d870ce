"""One datatrove executor per stage: local processes by default, Slurm or Ray for corpora beyond one machine."""

from __future__ import annotations

import os
import sys
from typing import Any

from datatrove.executor.base import PipelineExecutor

from training.data.config import ExecutorOptions, RayOptions
from training.data.stages import Layout, Stage


def make_executor(
    stage: Stage, options: ExecutorOptions, layout: Layout, depends: PipelineExecutor | None = None
) -> PipelineExecutor:
    logging_dir = str(layout.logs(stage.slug))
    if options.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        workers = min(options.workers or os.cpu_count() or 1, stage.tasks)
        return LocalPipelineExecutor(
            stage.pipeline, tasks=stage.tasks, workers=workers, logging_dir=logging_dir, depends=depends
        )
    if options.kind == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        return RayPipelineExecutor(
            stage.pipeline,
            tasks=stage.tasks,
            logging_dir=logging_dir,
            depends=depends,
            cpus_per_task=options.ray.cpus_per_task,
            mem_per_cpu_gb=options.ray.mem_per_cpu_gb,
        )
    from datatrove.executor.slurm import SlurmPipelineExecutor

    slurm = options.slurm
    assert slurm is not None  # checked when the config was loaded
    extra: dict[str, Any] = {"sbatch_args": dict(slurm.sbatch_args)} if slurm.sbatch_args else {}
    return SlurmPipelineExecutor(
        stage.pipeline,
        tasks=stage.tasks,
        time=slurm.time,
        partition=slurm.partition,
        cpus_per_task=slurm.cpus_per_task,
        mem_per_cpu_gb=slurm.mem_per_cpu_gb,
        qos=slurm.qos,
        job_name=f"soro-{stage.slug}",
        # The environment this command runs in, unless the config names another one for the compute nodes.
        env_command=slurm.env_command or f"source {sys.prefix}/bin/activate",
        logging_dir=logging_dir,
        depends=depends,
        **extra,
    )


def completed_tasks(layout: Layout, stage: Stage) -> int:
    completions = layout.logs(stage.slug) / "completions"
    return sum(1 for _ in completions.iterdir()) if completions.is_dir() else 0


def stage_done(layout: Layout, stage: Stage) -> bool:
    return completed_tasks(layout, stage) >= stage.tasks


# Ray resolves 127.0.0.1 to the machine's outward address (and binds its servers there or on every interface)
# unless this is off; off, a node started on loopback stays on loopback.
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def connect_ray(options: RayOptions) -> None:
    """Join the configured Ray cluster, or start a private one on loopback, once per process."""
    if options.address is None:
        # Read by Ray when it is imported: set before the first import.
        for key, value in RAY_LOOPBACK_ENV.items():
            os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        return
    if options.address is None:
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=options.address, log_to_driver=False)
