"""loom's operator generator: opdefs/*.yaml -> generated/ (see docs/op-dsl.md)."""
