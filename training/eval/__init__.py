"""Evaluation: Tajik benchmarks, English retention and live-service checks on a model folder or an endpoint.

``soro eval run`` (``runner``) runs a suite config (``config``) of tasks (``tasks``) on a backend (``backends``)
and writes JSON per task plus a Markdown table (``results``); ``soro eval compare`` (``compare``) puts runs side
by side with bootstrap intervals (``stats``). ``lm_eval_tasks/`` holds the same tasks for lm-evaluation-harness.
"""
