"""`make test`'s two workers get the slowest test files first, in tests/conftest.py's order (SLOWEST_FIRST)."""

from pathlib import Path
from types import SimpleNamespace

from conftest import SLOWEST_FIRST, pytest_collection_modifyitems


class Worker:
    """What xdist's scheduler calls on a worker: its id, the test indices it is sent, a shutdown."""

    def __init__(self, name: str) -> None:
        self.gateway, self.shutting_down, self.sent = SimpleNamespace(id=name), False, []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def test_the_scheduler_hands_out_the_slowest_files_first_not_the_largest(pytestconfig, monkeypatch):
    """xdist's loadscope sorts files by their number of tests unless told not to (conftest's pytest_configure): make
    demo's 4 tests then started last and one worker ran alone for minutes. The real scheduler, with this session's
    options, on a collection where a fast file has the most tests and the slow files have few."""
    from xdist.scheduler import LoadScopeScheduling, loadscope

    counts = {"test_reliability.py": 28, SLOWEST_FIRST[1]: 3, "test_scripts.py": 16, SLOWEST_FIRST[0]: 4}
    items = [SimpleNamespace(path=Path("tests", name), nodeid=f"tests/{name}::test_{i}") for name, count in counts.items() for i in range(count)]
    pytest_collection_modifyitems(items)
    collection = [item.nodeid for item in items]

    monkeypatch.setattr(loadscope, "parse_tx_spec_config", lambda config: ["popen"] * 2)  # -n 2, run with it or not
    scheduler = LoadScopeScheduling(pytestconfig)
    workers = [Worker("gw0"), Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    first_files = [collection[worker.sent[0]].split("::")[0].rsplit("/", 1)[-1] for worker in workers]
    assert first_files == SLOWEST_FIRST[:2]
