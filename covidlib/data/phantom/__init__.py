"""The phantom: a deterministic, synthetic chest-CT-like dataset with lesion masks.

Every chapter runs offline on the phantom in the quick profile. Each image is an axial
slice drawn in Hounsfield-like units (air, fat, soft tissue, bone, lung) and then shown
through a random lung window with scanner blur and noise:

* anatomy: body outline with subcutaneous fat, chest-wall muscle, ribs, sternum, spine,
  scapulae, mediastinum, heart and aorta, two lung fields with branching vessels, and the
  scanner table under the body in wide views;
* ``COVID`` images: bilateral, peripheral, posterior-predominant ground-glass opacities
  (GGO) with soft edges and reticular ("crazy paving") texture, sometimes consolidation;
  the lesion mask marks them;
* ``non-COVID`` images: normal lungs, nodules, lobar consolidation, emphysema or pleural
  effusion (the ``finding`` column of ``labels.csv``), so the task is not trivial.

``difficulty`` in ``[0, 1]`` lowers lesion contrast, size and number, raises scanner noise
and makes the confounders (dependent posterior haze, nodule halos, soft consolidation)
more GGO-like. Image ``k`` depends only on ``(seed, k)``, so a bigger ``n`` extends a
smaller phantom without changing its first images.

Its modules, each private (import from ``covidlib.data.phantom``): ``_anatomy`` (tissues,
findings, random fields, geometry), ``_render`` (one slice), ``_disk`` (the dataset on disk)
and ``_patients`` (the multi-slice phantom of the leakage audit).

Example:
    >>> import tempfile, pathlib
    >>> root = generate_phantom(pathlib.Path(tempfile.mkdtemp()) / "phantom", n=4)
    >>> sorted(p.name for p in root.iterdir())
    ['COVID', 'labels.csv', 'manifest.json', 'masks', 'non-COVID']
"""

from __future__ import annotations

from covidlib.data.phantom._anatomy import (
    CLASS_NAMES,
    COVID_FINDINGS,
    NON_COVID_FINDINGS,
    SIZE_MAX,
    SIZE_MIN,
    PhantomSlice,
    sample_size,
)
from covidlib.data.phantom._disk import (
    GENERATOR,
    GENERATOR_VERSION,
    LABELS_COLUMNS,
    LABELS_NAME,
    MANIFEST_NAME,
    PhantomExistsError,
    ensure_phantom,
    generate_phantom,
    is_covid_index,
    is_current,
    phantom_manifest,
    read_manifest,
)
from covidlib.data.phantom._patients import (
    PATIENT_DEFAULTS,
    PATIENT_GENERATOR,
    PATIENT_PHANTOM,
    ensure_patient_phantom,
    generate_patient_phantom,
)
from covidlib.data.phantom._render import (
    render_phantom,
    render_slice,
)

__all__ = [
    "CLASS_NAMES",
    "COVID_FINDINGS",
    "GENERATOR",
    "GENERATOR_VERSION",
    "LABELS_COLUMNS",
    "LABELS_NAME",
    "MANIFEST_NAME",
    "NON_COVID_FINDINGS",
    "PATIENT_DEFAULTS",
    "PATIENT_GENERATOR",
    "PATIENT_PHANTOM",
    "PhantomExistsError",
    "PhantomSlice",
    "SIZE_MAX",
    "SIZE_MIN",
    "ensure_patient_phantom",
    "ensure_phantom",
    "generate_patient_phantom",
    "generate_phantom",
    "is_covid_index",
    "is_current",
    "phantom_manifest",
    "read_manifest",
    "render_phantom",
    "render_slice",
    "sample_size",
]
