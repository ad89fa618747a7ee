"""Settings that pass the type check but cannot mean what the user wanted (issue 21, section 5): the limits
themselves, on both sides. The one line each prints is a row of tests/test_bad_input_catalog.py."""

from __future__ import annotations

import importlib.util
import logging
import socket
import time

import pytest

from trainer.errors import ConfigError, DataError

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason='the mlflow extra: pip install "traindx[mlflow]"')


def test_a_validation_split_holds_one_image_per_class_and_warns_below_a_hundred(caplog):
    from trainer.data import FEW_VAL_IMAGES, split_indices

    with pytest.raises(DataError, match=r"holds out 9 of 1797 images .* use data.val_fraction >= 0.0056"):
        split_indices(1797, 0.005, 0, num_classes=10)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        train, val = split_indices(1797, 0.0056, 0, num_classes=10)  # the fraction the refusal suggests
    assert len(val) == 10 and len(train) == 1787 and not set(train) & set(val)
    assert "holds out only 10 validation images: accuracy moves in steps of 10.0 points" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trainer"):
        split_indices(1797, 0.2, 0, num_classes=10)
    assert FEW_VAL_IMAGES <= 359 and not caplog.text
    with pytest.raises(DataError, match="3 images are too few to hold out one per class"):
        split_indices(3, 0.5, 0, num_classes=3)


def test_resnet18_takes_the_smallest_image_that_reaches_its_last_stage_wider_than_one_pixel():
    from trainer.config import ModelConf
    from trainer.models import build_model
    from trainer.preflight import _forward_fails

    model = build_model(ModelConf(name="resnet18", num_classes=10, in_channels=3, width=4))
    # three stride-2 stages: 5 -> 3 -> 2 -> 1 ends at 1x1; 4 -> 2 -> 1 gives the last one a 1x1 map to halve
    assert _forward_fails(model, (3, 5, 5)) is None
    assert _forward_fails(model, (3, 4, 4)) == "its downsampling layer stages.6.conv1 gets a 1x1 feature map"
    assert model.training  # the probe put the mode back


@needs_mlflow
def test_a_server_that_accepts_but_never_answers_is_refused_within_the_timeout(tmp_path, monkeypatch):
    from trainer import loggers
    from trainer.config import LoggerConf

    monkeypatch.setattr(loggers, "SERVER_TIMEOUT_S", 0.5)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # the kernel completes the handshake; nobody ever reads the request
    uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
    start = time.monotonic()
    try:
        with pytest.raises(ConfigError, match=rf"logger.tracking_uri={uri} does not answer within 0.5 s \(timed out"):
            loggers.build_logger(LoggerConf(name="mlflow", tracking_uri=uri), tmp_path)
    finally:
        silent.close()
    assert time.monotonic() - start < 5  # MLflow's own retries took 261 s
    assert list(tmp_path.iterdir()) == []  # nothing written


@needs_mlflow
@pytest.mark.parametrize("uri", ["mlruns", "file:{tmp}/store", "{tmp}/store", "sqlite:///{tmp}/mlflow.db"])
def test_tracking_uris_mlflow_takes_pass_and_write_nothing(uri, tmp_path):
    from trainer.config import LoggerConf
    from trainer.loggers import build_logger

    build_logger(LoggerConf(name="mlflow", tracking_uri=uri.replace("{tmp}", str(tmp_path))), tmp_path / "run")
    assert list(tmp_path.iterdir()) == []
