"""Embeds a text file in the library as a C++ function returning it.

    python tools/embed_text.py INPUT OUTPUT QUALIFIED_FUNCTION

ninja runs it (build.ninja.in, rule embed_text): NVRTC compiles fused GPU
kernels at run time against runtime/kernels/pointwise_math.h, which an
installed library cannot read from the source tree. The output is written
only when its content changes, so ninja's restat leaves its object alone.
"""
from __future__ import annotations

import sys
from pathlib import Path


def render(text: str, qualified: str, source: str) -> str:
    namespace, _, function = qualified.rpartition("::")
    delimiter = "loom_embed"
    while f"){delimiter}\"" in text:
        delimiter += "_"
    body = (f"std::string_view {function}() {{\n"
            f"  static constexpr char text[] = R\"{delimiter}({text}){delimiter}\";\n"
            f"  return {{text, sizeof(text) - 1}};\n}}\n")
    if namespace:
        body = f"namespace {namespace} {{\n\n{body}\n}}  // namespace {namespace}\n"
    return f"// {source}, embedded by tools/embed_text.py — do not edit\n#include <string_view>\n\n{body}"


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    source, output, qualified = Path(argv[1]), Path(argv[2]), argv[3]
    content = render(source.read_text(), qualified, "/".join(source.parts[-3:]))
    output.parent.mkdir(parents=True, exist_ok=True)
    if not output.exists() or output.read_text() != content:
        output.write_text(content)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
