"""Experiment loggers: each epoch's diagnostics records, mirrored to a viewer (config group `logger`).

The JSONL files stay the run's record; a logger is a view of the same dicts. `build_logger(cfg.logger,
run_dir)` is called once; the loop then calls `epoch(...)` with the records the JSONL writer got and
the findings that fired that epoch, and `close(best)` at the end.

    logger=none          (default) nothing
    logger=tensorboard   <run dir>/tensorboard/: every numeric field as a scalar (train/<field>,
                         val/<field>; per-layer dicts grouped as train_<field>/<layer>), the findings
                         as text when they fire, and the run's overrides as hparams with the best
                         validation accuracy (TensorBoard's HParams tab: run with
                         `tensorboard --logdir <sweep dir>`). Needs `pip install "traindx[tensorboard]"`.
    logger=mlflow        one MLflow run per traindx run (in a sweep: per job, in one experiment named after
                         the sweep, in one store): the same numbers as metrics (step = epoch), the findings
                         as tags and a findings.md artifact, the overrides as params, and the best
                         validation accuracy as a metric at the end. Needs `pip install "traindx[mlflow]"`.

Both take the same walk over a record (`scalars`), the same overrides (`run_overrides`) and the same
finding line (`finding_line`).
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

from rundir.files import RunFileError
from rundir.format import HYDRA_DIR, HYDRA_OVERRIDES, HYDRA_RUNTIME, LOGGER_NESTED_TAG, LOGGER_TAG

from .config import LoggerConf
from .errors import ConfigError
from .preflight import check_writable_dir
from .signals import Preempted

BEST_METRIC = "hparam/best_val_accuracy"  # the HParams tab's metric
# Seconds a tracking server gets to answer the check before the first step. MLflow's own client retries an
# unreachable server with backoff for about four minutes per call (the run stalled 261 s at its first epoch).
SERVER_TIMEOUT_S = 5.0


def scalars(prefix: str, record: dict) -> Iterator[tuple[str, float]]:
    """(tag, value) for every finite number in a record; a dict (per-layer norms) or list becomes a group
    `<prefix>_<field>/<key>`. The epoch itself is the step, not a scalar."""
    for key, value in record.items():
        if key == "epoch":
            continue
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            if _number(value):
                yield LOGGER_TAG.format(file=prefix, field=key), float(value)
            continue
        for sub, v in items:
            if _number(v):
                yield LOGGER_NESTED_TAG.format(file=prefix, field=key, key=sub), float(v)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def run_overrides(run_dir: Path) -> dict[str, Any]:
    """The run's command-line overrides (`.hydra/overrides.yaml`): in a sweep, the job's swept values."""
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    path = Path(run_dir) / HYDRA_DIR / HYDRA_OVERRIDES
    try:
        lines = yaml.safe_load(path.read_text()) or []
        parsed = OverridesParser.create().parse_overrides([str(x) for x in lines])
    except Exception:  # noqa: BLE001 - no Hydra directory (train() called directly) or an odd override
        return {}
    out = {}
    for o in parsed:
        if o.is_delete() or o.key_or_group.startswith("hydra"):
            continue
        v = o.value()
        out[o.key_or_group] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def finding_line(finding: Any, epoch: int) -> str:
    """How a finding that fired reads in a viewer: `**warning** epoch 4: the LR was cut ...`."""
    return f"**{finding.severity}** epoch {epoch}: {finding.message}"


def sweep_dir(run_dir: Path) -> Optional[Path]:
    """The sweep directory when this run is a job of a Hydra multirun, else None.

    `.hydra/hydra.yaml` keeps `hydra.sweep.dir` unresolved (`${now:...}` would give this moment's time,
    not the sweep's), so the sweep directory is the run directory less its resolved `hydra.sweep.subdir`.
    """
    from omegaconf import OmegaConf

    run_dir = Path(run_dir).absolute()
    try:
        hydra = OmegaConf.load(run_dir / HYDRA_DIR / HYDRA_RUNTIME).hydra
        if str(hydra.mode) != "MULTIRUN":
            return None
    except Exception:  # noqa: BLE001 - no Hydra directory (train() called directly): a single run
        return None
    try:
        subdir = Path(str(hydra.sweep.subdir)).parts  # ${hydra.job.num} by default, resolved from the same file
    except Exception:  # noqa: BLE001 - a subdir made of resolvers only the job had: its parent, the default layout
        subdir = ()
    if subdir and run_dir.parts[-len(subdir):] == subdir:
        return Path(*run_dir.parts[:-len(subdir)])
    return run_dir.parent


class NoLogger:
    def epoch(self, epoch: int, train: dict, val: dict, findings: list) -> None:
        pass

    def close(self, best_val_accuracy: Optional[float]) -> None:
        pass


class TensorBoardLogger:
    """Writes event files with torch's SummaryWriter (its own thread does the file writing)."""

    def __init__(self, log_dir: Path, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401 - fails without the package
        except ImportError:
            raise ConfigError('logger=tensorboard needs the tensorboard package: pip install "traindx[tensorboard]"') \
                from None
        self.log_dir, self.run_dir = log_dir, run_dir
        self.writer = None  # opened at the first epoch: set-up failures leave no event file

    def _open(self, first_epoch: int):
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run rewrites the epochs after its checkpoint: hide the old events from there on.
        self.writer = SummaryWriter(str(self.log_dir), purge_step=first_epoch if first_epoch > 1 else None)
        return self.writer

    def epoch(self, epoch: int, train: dict, val: dict, findings: list) -> None:
        w = self.writer or self._open(epoch)
        for prefix, record in (("train", train), ("val", val)):
            for tag, value in scalars(prefix, record):
                w.add_scalar(tag, value, epoch)
        for f in findings:
            w.add_text(f"findings/{f.id}", finding_line(f, epoch), epoch)

    def close(self, best_val_accuracy: Optional[float]) -> None:
        if self.writer is None:
            return
        hparams = run_overrides(self.run_dir)
        if hparams and best_val_accuracy is not None:
            from torch.utils.tensorboard.summary import hparams as hparams_summary

            # In this run's own directory (SummaryWriter.add_hparams would open a sub-run per call).
            for summary in hparams_summary(hparams, {BEST_METRIC: best_val_accuracy}):
                self.writer.file_writer.add_summary(summary)
            self.writer.add_scalar(BEST_METRIC, best_val_accuracy)
        self.writer.close()


def check_writable(directory: Path, setting: str) -> None:
    """ConfigError naming the setting (`key=value`) unless directory can be written or created
    (trainer/preflight.py's check of the run's own directories): found before the first step, not after an epoch."""
    try:
        check_writable_dir(directory)
    except RunFileError as e:
        raise ConfigError(f"{setting} cannot be used: {e}") from None


class MlflowLogger:
    """One MLflow run, through MlflowClient (no global active run: a sweep's jobs in one process stay apart).

    The store is written synchronously: a local file store costs a few ms per epoch (benchmarks/logger_overhead.py).
    """

    RUN_DIR_TAG = "traindx.run_dir"  # finds the run again when a traindx run resumes
    BEST_METRIC = "best_val_accuracy"
    FINDINGS_ARTIFACT = "findings.md"

    def __init__(self, cfg: LoggerConf, run_dir: Path):
        try:
            import mlflow  # noqa: F401 - fails without the package
        except ImportError:
            raise ConfigError('logger=mlflow needs the mlflow-skinny package: pip install "traindx[mlflow]"') from None
        self.run_dir = Path(run_dir).absolute()
        sweep = sweep_dir(self.run_dir)
        self.tracking_uri = cfg.tracking_uri or f"file:{(sweep or self.run_dir) / 'mlruns'}"
        self.experiment = cfg.experiment or (str(sweep) if sweep is not None else "traindx")
        self.client, self.run_id, self.findings = None, None, []  # opened at the first epoch, like the event file

    def check(self) -> None:
        """ConfigError unless the tracking store can take this run: a URI MLflow knows, a file store in a
        directory that can be written, a server that answers within SERVER_TIMEOUT_S. Nothing is written."""
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        uri = self.tracking_uri
        scheme = urlsplit(uri).scheme
        if os.name == "nt" and len(scheme) == 1:  # C:\\mlruns: a drive letter, not a scheme
            return check_writable(Path(uri), f"logger.tracking_uri={uri}")
        if not scheme and ":" in uri:  # MLflow would make it a folder of that name in the working directory
            raise ConfigError(f"logger.tracking_uri={uri!r} is not a URI (scheme:..., e.g. http://host:5000, "
                              f"file:/path/mlruns, sqlite:///mlflow.db); MLflow would make it a folder of that name")
        supported = _mlflow_schemes()
        if supported is not None and (scheme or "") not in supported and uri not in supported:
            hint = f"; did you mean http://{uri}?" if urlsplit(uri).path.isdigit() else ""  # host:port
            raise ConfigError(f"logger.tracking_uri={uri!r}: MLflow has no tracking store for {scheme}: (schemes: "
                              f"{', '.join(s for s in supported if s)}){hint}")
        if scheme in ("", "file"):
            store = Path(url2pathname(urlsplit(uri).path) if scheme else uri)
            check_writable(store, f"logger.tracking_uri={uri}")
        elif scheme in ("http", "https"):
            _check_server(uri)

    def _open(self) -> str:
        from mlflow import MlflowClient
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        if self.tracking_uri.startswith("file:") or "://" not in self.tracking_uri:
            # MLflow 3 refuses its file store unless asked for; the user asked for it (this is the default).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            try:
                experiment_id = client.create_experiment(self.experiment)
            except MlflowException:  # another job of the sweep created it first
                experiment_id = client.get_experiment_by_name(self.experiment).experiment_id
        else:
            experiment_id = experiment.experiment_id
        tag = self.RUN_DIR_TAG
        found = [] if "'" in str(self.run_dir) else client.search_runs(  # a quote cannot go in the filter: no resume
            [experiment_id], filter_string=f"tags.`{tag}` = '{self.run_dir}'", max_results=1)
        if found:  # a resumed run: the epochs it redoes get a second value at the same step
            self.run_id = found[0].info.run_id
            client.update_run(self.run_id, status="RUNNING")
        else:
            run = client.create_run(experiment_id, run_name=self.run_dir.name, tags={tag: str(self.run_dir)})
            self.run_id = run.info.run_id
            # 500 characters: the limit of MLflow 2's param values (an override is rarely longer)
            params = [Param(metric_name(k), str(v)[:500]) for k, v in run_overrides(self.run_dir).items()]
            if params:
                client.log_batch(self.run_id, params=params)
        self.client = client
        return self.run_id

    def epoch(self, epoch: int, train: dict, val: dict, findings: list) -> None:
        import time

        from mlflow.entities import Metric

        run_id = self.run_id or self._open()
        now = int(time.time() * 1000)
        metrics = [Metric(metric_name(tag), value, now, epoch)
                   for prefix, record in (("train", train), ("val", val)) for tag, value in scalars(prefix, record)]
        self.client.log_batch(run_id, metrics=metrics)
        for f in findings:
            line = finding_line(f, epoch)
            self.findings.append(f"- `{f.id}`: {line}")
            self.client.set_tag(run_id, f"finding.{f.id}", line)
        if findings:  # the artifact is rewritten whole: it lists every finding so far
            self.client.log_text(run_id, "\n".join(self.findings) + "\n", self.FINDINGS_ARTIFACT)

    def close(self, best_val_accuracy: Optional[float]) -> None:
        if self.run_id is None:
            return
        if best_val_accuracy is not None:
            self.client.log_metric(self.run_id, self.BEST_METRIC, best_val_accuracy)
        # close() runs in the loop's `finally`: the exception on its way out, if any, says how the run ended
        error = sys.exc_info()[1]
        status = ("FINISHED" if error is None else
                  "KILLED" if isinstance(error, (Preempted, KeyboardInterrupt)) else "FAILED")
        self.client.set_terminated(self.run_id, status=status)
        self.run_id = None


def _mlflow_schemes() -> Optional[list[str]]:
    """The URI schemes MLflow has a tracking store for (its registry; None where that internal moved)."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        return list(_tracking_store_registry._registry)
    except (ImportError, AttributeError):
        return None


def _check_server(uri: str) -> None:
    """ConfigError unless the server at uri answers an HTTP request within SERVER_TIMEOUT_S (any status counts:
    a login page or a 404 says a server is there; MLflow itself reports what it refuses)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=SERVER_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise ConfigError(f"logger.tracking_uri={uri} does not answer within {SERVER_TIMEOUT_S:g} s ({reason}); "
                          f"start the tracking server, or choose another logger.tracking_uri or logger=none") \
            from None


def metric_name(tag: str) -> str:
    """An MLflow-legal metric or param name (letters, digits, _ - . / space): other characters become _."""
    return re.sub(r"[^\w\-./ ]", "_", tag)


def build_logger(cfg: LoggerConf, run_dir: Path):
    """The logger `cfg.name` names, writing under run_dir (or cfg.dir). ConfigError when its package is missing
    or its destination cannot take the run (checked here, before the first step)."""
    if cfg.name == "none":
        return NoLogger()
    log_dir = Path(cfg.dir) if cfg.dir else Path(run_dir) / cfg.name
    if cfg.name == "tensorboard":
        logger = TensorBoardLogger(log_dir, Path(run_dir))
        check_writable(log_dir, f"logger.dir={log_dir}")
        return logger
    if cfg.name == "mlflow":
        logger = MlflowLogger(cfg, Path(run_dir))
        logger.check()
        return logger
    raise ConfigError(f"logger={cfg.name} is unknown")  # LoggerConf checks the name first
