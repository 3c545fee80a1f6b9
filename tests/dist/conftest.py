"""Fixtures of the distributed tests: the siamrec CLI (SIAMREC_CLI), ML-100K, free loopback ports,
and ranks started as separate processes (always stopped)."""
import json
import os
import socket
import subprocess

import pytest

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def cli_path():
    path = os.environ.get("SIAMREC_CLI", os.path.join(SOURCE_DIR, "build", "siamrec"))
    if not os.path.exists(path):
        pytest.skip(f"siamrec CLI not built at {path}")
    return path


@pytest.fixture(scope="session")
def ml100k():
    d = os.environ.get("SIAMREC_DATA_DIR", "")
    if not d or not os.path.isdir(os.path.join(d, "ml-100k")):
        if os.environ.get("CI") == "true":
            pytest.fail("ml-100k not in $SIAMREC_DATA_DIR")
        pytest.skip("ml-100k not in $SIAMREC_DATA_DIR")
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ranks:
    """Ranks of one group started by hand (as torchrun or mpirun would), killed if still running."""

    def __init__(self):
        self.procs = []

    def start(self, world, args_of_rank, env_style="torchrun", port=None, cwd=None):
        port = port or free_port()
        procs = []
        for r in range(world):
            env = dict(os.environ)
            for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"):
                env.pop(k, None)
            if env_style == "torchrun":
                env.update(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world))
            else:  # mpirun (OpenMPI)
                env.update(OMPI_COMM_WORLD_RANK=str(r), OMPI_COMM_WORLD_LOCAL_RANK=str(r),
                           OMPI_COMM_WORLD_SIZE=str(world))
            env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            p = subprocess.Popen([cli_path(), "--threads", "1", *args_of_rank(r)], env=env, cwd=cwd,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(p)
            self.procs.append(p)
        return procs

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def ranks():
    r = Ranks()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def cli():
    path = cli_path()

    def run(*args, check=True, timeout=600):
        r = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"siamrec {' '.join(args)} exited {r.returncode}: {r.stderr[-3000:]}")
        return r

    return run


def metrics(json_path):
    with open(json_path) as f:
        return json.load(f)["metrics"]
