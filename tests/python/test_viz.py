"""lm.viz: the DOT picture and the layer table of a symbol."""
import shutil

import pytest

import loom as lm

sym = lm.sym


def lenet():
    data = sym.var("data")
    c1 = sym.max_pool(sym.relu(sym.convolution(data, name="c1")), kernel=[2], name="p1")
    fc = sym.linear(sym.flatten(c1, name="flat"), sym.var("fc_w"), sym.var("fc_b"), name="fc")
    return sym.softmax(fc, name="prob")


SHAPES = {"data": (2, 1, 8, 8), "c1_weight": (4, 1, 3, 3), "fc_w": (10, 36), "fc_b": (10,)}


def test_print_summary_counts_parameters_once(capsys):
    net = lenet()
    total = lm.viz.print_summary(net, shape=SHAPES)
    out = capsys.readouterr().out
    assert total == 4 * 9 + 10 * 36 + 10
    assert "c1 (convolution)" in out and "2x4x6x6" in out and "prob (softmax)" in out and "2x10" in out
    assert "Total params: 406" in out


def test_plot_network_has_operators_edges_and_shapes():
    d = lm.viz.plot_network(lenet(), title="lenet", shape=SHAPES)
    src = d.source
    assert src.startswith('digraph "lenet"')
    for label in ("convolution\\nc1", "max_pool\\np1", "linear\\nfc", "softmax\\nprob"):
        assert label in src
    assert "c1_weight" not in src          # weights hidden by default
    assert 'label="2x4x6x6"' in src        # the conv output's shape on its edge
    assert src.count("->") == 6            # data -> c1 -> relu -> p1 -> flat -> fc -> prob
    shown = lm.viz.plot_network(lenet(), hide_weights=False).source
    assert "c1_weight" in shown


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_writes_a_file(tmp_path):
    path = lm.viz.plot_network(lenet(), shape=SHAPES).render(str(tmp_path / "net.svg"))
    assert open(path).read().lstrip().startswith("<?xml")
