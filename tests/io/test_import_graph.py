"""The file layer has no import cycle (function-level imports included), and extraction never reaches the scorer."""

from __future__ import annotations

import itertools

import pytest

grimp = pytest.importorskip("grimp")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("affectgpt", cache_dir=None)


def test_no_import_cycle_among_the_io_modules(graph):
    modules = sorted(m for m in graph.modules if m.startswith("affectgpt.io."))
    assert "affectgpt.io.npy" in modules and "affectgpt.io.safe_pickle" in modules
    cycles = [(a, b) for a, b in itertools.combinations(modules, 2)
              if graph.chain_exists(a, b) and graph.chain_exists(b, a)]
    assert cycles == []


def test_the_npy_reader_and_the_unpickler_do_not_import_each_other_both_ways(graph):
    # io/npy.py uses the unpickler for object arrays; the unpickler's stand-ins live apart from the reader
    assert graph.chain_exists("affectgpt.io.npy", "affectgpt.io.safe_pickle")
    assert not graph.chain_exists("affectgpt.io.safe_pickle", "affectgpt.io.npy")


@pytest.mark.parametrize(("importer", "imported"), [
    ("affectgpt.extract", "affectgpt.bench"),
    ("affectgpt.formats", "affectgpt.bench"),
    ("affectgpt.formats", "affectgpt.extract"),
    ("affectgpt.data.manifests", "affectgpt.bench"),
])
def test_no_import_path(graph, importer, imported):
    chain = graph.find_shortest_chain(importer, imported, as_packages=True)
    assert chain is None, f"{importer} reaches {imported}: {' -> '.join(chain)}"
