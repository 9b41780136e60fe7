"""The built-in procedural eye (see `case`): a paired CF photo and six radial OCT B-scans from one set of
parameters in millimetres. `case` renders an eye from its parts (`geometry`, `vessels`, `fields`, `layers`,
`cf`, `oct`, `oct_lesions`); `export` writes phantom datasets in the layouts the readers understand.

`PHANTOM_VERSION` keys the on-disk cache of rendered arrays: bump it with any change to what is rendered.
"""
from eyeoct.data.phantom.case import (PHANTOM_VERSION, PhantomCase, PhantomConfig, eye_facts, render_case,
                                      true_boundary_rows)

__all__ = ["PHANTOM_VERSION", "PhantomCase", "PhantomConfig", "eye_facts", "render_case", "true_boundary_rows"]
