"""Model catalogs: the packaged reference catalog of public model figures."""

from tollgate.catalog.reference import (
    BENCHMARKS,
    CAPABILITIES,
    CatalogError,
    ReferenceCatalog,
    ReferenceModel,
    load_reference_catalog,
    parse_reference_catalog,
)

__all__ = [
    "BENCHMARKS",
    "CAPABILITIES",
    "CatalogError",
    "ReferenceCatalog",
    "ReferenceModel",
    "load_reference_catalog",
    "parse_reference_catalog",
]
