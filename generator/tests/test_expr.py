"""The expression language: parsing, name analysis and C++ emission."""
import pytest

from generator import expr as ex
from generator.errors import SpecError


def parse(text):
    return ex.parse(text, "opdefs/t.yaml", "kernel.pointwise")


def test_cpp_casts_literals_and_attributes_to_the_element_type():
    e = parse("where(x > 0, x, x * slope)")
    assert ex.to_cpp_scalar(e, {"x"}, {"slope"}) == "::loom::pw::where((x > T(0)), x, (x * T(slope)))"


def test_cpp_converts_boolean_values_used_as_numbers():
    assert ex.to_cpp_scalar(parse("x * (x > 0)"), {"x"}, set()) == "(x * T((x > T(0))))"


def test_cpp_logic_and_power():
    e = parse("where(x > 0 and not y < 1, x ** 2, -y)")
    assert ex.to_cpp_scalar(e, {"x", "y"}, set()) == \
        "::loom::pw::where(((x > T(0)) && (!(y < T(1)))), (x * x), (-y))"


def test_names_excludes_called_functions():
    assert parse("exp(x) + y * z").names() == {"x", "y", "z"}


def test_wrong_arity_is_reported():
    with pytest.raises(SpecError, match="'where' takes 3 argument"):
        ex.to_cpp_scalar(parse("where(x > 0, x)"), {"x"}, set())


def test_subscripts_are_not_part_of_the_language():
    e = parse("x[0]")
    with pytest.raises(SpecError, match="Subscript is not part of the expression language"):
        ex.check_names(e, {"x": "tensor"}, set(ex.SCALAR_FUNCTIONS))


def test_grad_formula_may_read_output_attributes():
    from generator.grad_codegen import GRAD_ATTRIBUTES, GRAD_CALLS
    e = ex.parse("grad * y.numel", "f", "grad.x")
    ex.check_names(e, {"grad": "", "y": ""}, set(GRAD_CALLS), GRAD_ATTRIBUTES)
