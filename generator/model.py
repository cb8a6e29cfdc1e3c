"""The typed model between YAML and templates: every decision is made here
(and in spec.py, which builds it); templates only loop and substitute."""
from __future__ import annotations

from dataclasses import dataclass, field

from generator.expr import Expr

DTYPE_GROUPS = {
    "floating": ["float32", "float64", "float16", "bfloat16"],
    "integral": ["int8", "uint8", "int32", "int64"],
    "numeric": ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64"],
}
ALL_DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64", "bool"]
# dtypes every kernel kind is built for (runtime/core/dtype_visit.h)...
KERNEL_DTYPES = ["float32", "float64", "int8", "uint8", "int32", "int64", "bool"]
# ...and float16/bfloat16, stored as runtime/core/half.h's f16/bf16 and
# computed in float32 ("opmath"): pointwise and reduce loops convert on load
# and store (reductions accumulate in float32); impl ops hand their kernels
# float32 copies and round the results once (the kernels are written for
# float32/float64); composite ops inherit it from the ops they call. Update
# functors take their elements by reference, so that kind lists half dtypes
# as declared-but-pending.
HALF_DTYPES = ["float16", "bfloat16"]
HALF_KINDS = {"pointwise", "reduce", "impl", "composite", "view", "update", "generate"}
FLOATING = {"float32", "float64", "float16", "bfloat16"}

CPP_DTYPE = {
    "float32": ("kFloat32", "float"), "float64": ("kFloat64", "double"),
    "float16": ("kFloat16", "::loom::f16"), "bfloat16": ("kBFloat16", "::loom::bf16"),
    "int8": ("kInt8", "std::int8_t"), "uint8": ("kUInt8", "std::uint8_t"),
    "int32": ("kInt32", "std::int32_t"), "int64": ("kInt64", "std::int64_t"),
    "bool": ("kBool", "bool"),
}

# Attribute types: YAML type -> (C++ by-value type, Python annotation).
ATTR_TYPES = {"float": ("double", "float"), "int": ("std::int64_t", "int"), "bool": ("bool", "bool"),
              # reduction dims: None (all), an int, or a list of ints
              "int[]": ("::loom::ReduceDims", "int | list[int] | None"),
              # kernel.generate ops only: the result's dtype and device (MXNet's `ctx`)
              "dtype": ("::loom::DType", "str"), "device": ("::loom::Device", "Device | None")}
# Attribute types only a kernel.generate op takes (it has no array to take them from).
GENERATE_ONLY_TYPES = {"dtype", "device"}


@dataclass
class Arg:
    name: str
    type: str                      # "Tensor", "Tensor?", "Tensor[]" or an attribute type from ATTR_TYPES
    line: int
    default: object = None
    has_default: bool = False
    doc: str = ""
    index: bool = False            # an index array (`index: true`): integers, read as int64, never differentiable
    kwarg_only: bool = False       # Python (nd and sym) takes it by keyword only (`kwarg_only: true`)
    nondiff: bool = False          # `nondiff: true`: the same as listing it in the op's nondiff

    @property
    def is_tensor(self) -> bool:
        return self.type in ("Tensor", "Tensor?")

    @property
    def optional(self) -> bool:
        """An optional array (`Tensor?`): None in Python, NULL in C, an
        undefined NDArray in C++ and in the kernels, when not given."""
        return self.type == "Tensor?"

    @property
    def is_list(self) -> bool:
        """A list of arrays (`Tensor[]`), e.g. concat's `arrays`."""
        return self.type == "Tensor[]"


@dataclass
class Output:
    name: str
    line: int
    # hidden: computed and saved for the backward, never returned (PyTorch's
    # reserve outputs, Paddle's `intermediate`), e.g. a softmax's probabilities.
    hidden: bool = False
    # false: no gradient flows through it (indices, masks); it is returned
    # without autograd history and the formulas have no grad.<name> for it.
    differentiable: bool = True
    dtype: str | None = None       # a fixed dtype (int64, bool, float32); None: the op's result dtype
    # a list of arrays (`type: Tensor[]`): how many, as an int attribute
    # (split's num_outputs) or len(<int[] attribute>) (split_with_sizes'
    # len(sizes)); None for one array
    count: str | None = None

    @property
    def count_is_len(self) -> bool:
        return self.count is not None and self.count.startswith("len(") and self.count.endswith(")")

    @property
    def count_attr(self) -> str | None:
        """The attribute the count reads."""
        return self.count[4:-1].strip() if self.count_is_len else self.count

    @property
    def count_given_cpp(self) -> str:
        """C++ test that the count's attribute is given (an int[] may be None)."""
        return f"{self.count_attr}.has_value()" if self.count_is_len else "true"

    @property
    def count_cpp(self) -> str:
        """The count as a C++ std::int64_t expression over the op's parameters."""
        if self.count_is_len:
            return f"static_cast<std::int64_t>({self.count_attr} ? {self.count_attr}->size() : 0)"
        return self.count


@dataclass
class Domain:
    low: float = -3.0
    high: float = 3.0
    away_from: list = field(default_factory=list)
    margin: float = 1e-3


@dataclass
class TestHints:
    ref: Expr | None
    domain: dict[str, Domain]
    tol: dict[str, dict[str, float]]
    attrs: dict[str, object] = field(default_factory=dict)  # attribute values the tests use
    # tests.gradcheck: eps/atol/rtol for the float64 finite-difference checks,
    # gradgrad: false to skip the second-derivative check (with a reason in YAML).
    gradcheck: dict[str, object] = field(default_factory=dict)
    # tests.shapes: explicit input shapes (one list per case, one shape per
    # Tensor input); required by ops whose shape rule is a C++ function.
    shapes: list = field(default_factory=list)
    # per case (parallel to shapes): attribute values overriding `attrs`
    # for that case only; empty when no case has its own
    case_attrs: list = field(default_factory=list)


@dataclass
class ReduceKernel:
    """A reduction as a monoid: acc = init; acc = combine(acc, map(x)) over the
    reduced elements; result = project(acc, n)."""
    init: str                      # a number, "inf" or "-inf"
    combine: Expr                  # over a, b
    project: Expr | None           # over acc, n; None keeps acc
    acc: str                       # "wide" (double / int64) or "same" (the input type)
    map: Expr | None = None        # over x, the element; None keeps x
    empty_is_error: bool = False   # kernel.reduce.empty: error (max, min)

    @property
    def has_identity(self) -> bool:
        """False when reducing an empty dim is an error rather than project(init)."""
        return not self.empty_is_error


# kernel.requires names -> the build macro that says the option is built in,
# and the configure.py component a user must install to get it.
REQUIREMENTS = {
    "cpu": {"blas": ("LOOM_WITH_BLAS", "OpenBLAS (apt-get install libopenblas-dev)")},
    "cuda": {"cublas": ("LOOM_WITH_CUBLAS", "cuBLAS"), "cudnn": ("LOOM_WITH_CUDNN", "cuDNN")},
}


@dataclass
class ImplKernel:
    """kernel.impl: hand-written functions the generator declares (in
    generated/kernels/<op>.h) and a file under runtime/kernels/ defines."""
    cpu: str | None
    cuda: str | None
    requires: dict[str, list[str]]   # backend -> requirement names (REQUIREMENTS)


@dataclass
class OpDef:
    name: str
    file: str                      # path relative to the repository root
    line: int
    doc: str
    args: list[Arg]
    outputs: list[Output]
    dtypes: list[str]              # declared
    dtype_rule: str                # "promote" | "bool" | "same_as:<arg>"
    shape_rule: str                # "same_as" | "broadcast"
    shape_args: list[str]
    pointwise: Expr | None         # the body of a pointwise op
    grads: dict[str, Expr]         # input name -> formula
    nondiff: list[str]
    variants: list[str]
    tags: list[str]
    python_name: str
    tests: TestHints
    reduce: ReduceKernel | None = None   # set for reductions instead of pointwise
    int_promote: bool = False            # integer and bool inputs give int64 results
    python_operators: list[str] = field(default_factory=list)  # NDArray dunders, e.g. __add__
    impl: ImplKernel | None = None       # set for hand-written kernels
    composite: Expr | None = None        # set for ops written as other ops (kernel.composite)
    view: str | None = None              # set for views: the C++ function making one (kernel.view)
    update: object = None                # generator.update_spec.UpdateKernel (kernel.update)
    # the arguments an update op changes in place, or an impl op's kernels
    # write besides its outputs (batch_norm's running statistics)
    mutates: list = field(default_factory=list)
    # formulas giving several inputs' gradients in one call (grad keys
    # "x, weight, bias"): (the inputs, in the call's result order, formula)
    joint_grads: list = field(default_factory=list)
    inplace: str | None = None           # the input the in-place variant (op_) overwrites
    checks: list = field(default_factory=list)  # generator.checks.Check: argument validation
    dtypes_cuda: list | None = None      # dtypes_cuda: the dtypes the CUDA kernels take (None: all declared)
    # absorbs: (consumer op, {attr: value}, line): a lone consumer folded in by setting the attributes
    absorbs: list = field(default_factory=list)
    generate: object = None              # generator.generate_spec.GenerateKernel (kernel.generate)

    @property
    def kind(self) -> str:
        if self.generate is not None:
            return "generate"
        if self.impl is not None:
            return "impl"
        if self.composite is not None:
            return "composite"
        if self.view is not None:
            return "view"
        if self.update is not None:
            return "update"
        return "reduce" if self.reduce is not None else "pointwise"

    @property
    def tensor_args(self) -> list[Arg]:
        return [a for a in self.args if a.is_tensor]

    @property
    def attrs(self) -> list[Arg]:
        return [a for a in self.args if not a.is_tensor and not a.is_list]

    @property
    def visible_outputs(self) -> list[Output]:
        """What the op returns (hidden outputs are only saved for the backward)."""
        return [o for o in self.outputs if not o.hidden]

    @property
    def diff_outputs(self) -> list[Output]:
        """The outputs gradients flow through: the backward node's outputs, in order."""
        return [o for o in self.outputs if o.differentiable]

    @property
    def multi_output(self) -> bool:
        return len(self.outputs) > 1

    @property
    def list_output(self) -> Output | None:
        """The op's only output when it is a list of arrays (`Tensor[]`,
        as many as its `count` attribute says: split), else None."""
        return self.outputs[0] if len(self.outputs) == 1 and self.outputs[0].count is not None else None

    @property
    def result_struct(self) -> str:
        """The C++ struct an op with several visible outputs returns."""
        return "".join(p.capitalize() for p in self.name.split("_")) + "Result"

    @property
    def optional_names(self) -> set[str]:
        return {a.name for a in self.args if a.optional}

    @property
    def tensor_list(self) -> Arg | None:
        """The `Tensor[]` argument of a list op (its only array argument)."""
        return next((a for a in self.args if a.is_list), None)

    @property
    def kernel_dtypes(self) -> list[str]:
        return [d for d in self.dtypes
                if d in KERNEL_DTYPES or (d in HALF_DTYPES and self.kind in HALF_KINDS)]

    @property
    def cuda_kernel_dtypes(self) -> list[str]:
        """kernel_dtypes the CUDA kernels are built for (dtypes_cuda)."""
        return [d for d in self.kernel_dtypes if self.dtypes_cuda is None or d in self.dtypes_cuda]

    @property
    def full_precision_dtypes(self) -> list[str]:
        """kernel_dtypes without float16/bfloat16 (the suites' exact checks)."""
        return [d for d in self.kernel_dtypes if d not in HALF_DTYPES]

    @property
    def half_dtypes(self) -> list[str]:
        return [d for d in self.kernel_dtypes if d in HALF_DTYPES]

    @property
    def pending_dtypes(self) -> list[str]:
        """Declared dtypes whose kernels this generator cannot build yet."""
        return [d for d in self.dtypes if d not in self.kernel_dtypes]

    @property
    def functor(self) -> str:
        return "".join(p.capitalize() for p in self.name.split("_")) + "Functor"
