"""curate.core: what every stage package builds on, and nothing of the engine.

`stage_api` is the one module a stage author imports (options base, column spec, registration,
the build and preflight contexts as protocols, step base classes). `errors`, `options`, `steps`,
`atomic` and `plugins` are its parts and the helpers shared by every package; none of them imports
`curate.pipeline`, `curate.dedup`, `curate.filters` or `curate.refiners` (import-linter checks it).
"""
