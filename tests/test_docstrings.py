"""numpydoc validation of the public API's docstrings."""

import inspect

import pytest

import skae

numpydoc_validate = pytest.importorskip("numpydoc.validate")

#: numpydoc error codes enforced: parameters documented and real, summaries and
#: returns present, sections in order.
CHECKED = {"GL01", "GL02", "GL03", "GL07", "PR01", "PR02", "PR03", "PR06", "PR10",
           "RT01", "SS01", "SS03", "SS05"}


def public_objects():
    for name in skae.__all__:
        obj = getattr(skae, name)
        if not inspect.isclass(obj):
            continue
        yield f"skae.{name}"
        for method, _ in inspect.getmembers(obj, inspect.isfunction):
            if not method.startswith("_") and method not in {"get_params", "set_params",
                                                                "set_output", "fit_transform",
                                                                "fit_predict", "get_metadata_routing",
                                                                "get_feature_names_out"}:
                yield f"skae.{name}.{method}"


@pytest.mark.parametrize("name", sorted(set(public_objects())))
def test_docstring(name):
    result = numpydoc_validate.validate(name)
    errors = [(code, msg) for code, msg in result["errors"] if code in CHECKED]
    assert not errors, errors
