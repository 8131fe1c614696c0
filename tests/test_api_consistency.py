"""The public estimators' signatures, constraints and docstrings agree.

For every public estimator: the ``__init__`` parameters, the keys of
``_parameter_constraints`` and the parameters documented in the class
docstring are the same; each documented ``default=...`` is the signature's
default; and the documented attributes are exactly the public fitted
attributes (names ending in ``_``) of a fitted estimator.
"""

import ast
import inspect
import re
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator

import skae

docscrape = pytest.importorskip("numpydoc.docscrape")

ESTIMATORS = [
    getattr(skae, name)
    for name in skae.__all__
    if inspect.isclass(getattr(skae, name)) and issubclass(getattr(skae, name), BaseEstimator)
]

#: ``default=<value>`` at the end of a numpydoc type line.
DEFAULT_RE = re.compile(r"(?:^|,\s*)default\s*=\s*(?P<value>.+?)\s*$")

_MISSING = object()


def signature_parameters(cls):
    """Ordered ``{name: default}`` of ``cls.__init__``, without ``self``."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    bad = [p.name for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert not bad, f"{cls.__name__}.__init__ takes *args/**kwargs: {bad}"
    return {p.name: p.default for p in params}


def documented_parameters(cls):
    return list(docscrape.ClassDoc(cls)["Parameters"])


def documented_attributes(cls):
    return [attr.name for attr in docscrape.ClassDoc(cls)["Attributes"]]


def parse_default(type_line):
    """The value of ``default=...`` in a type line; ``_MISSING`` if absent.

    Raises ValueError when the documented text is not a Python literal.
    """
    match = DEFAULT_RE.search(type_line)
    if match is None:
        return _MISSING
    return ast.literal_eval(match.group("value"))


def _same_value(a, b):
    return type(a) is type(b) and a == b


@pytest.fixture(params=ESTIMATORS, ids=lambda cls: cls.__name__)
def estimator_class(request):
    return request.param


def test_public_estimators_found():
    names = {cls.__name__ for cls in ESTIMATORS}
    assert {"AutoencoderTransformer", "AutoencoderAnomalyDetector"} <= names


def test_signature_matches_parameter_constraints(estimator_class):
    cls = estimator_class
    signature = list(signature_parameters(cls))
    constraints = list(cls._parameter_constraints)
    missing = [name for name in signature if name not in constraints]
    extra = [name for name in constraints if name not in signature]
    assert not (missing or extra), (
        f"{cls.__name__}: __init__ parameters and _parameter_constraints keys differ.\n"
        f"  in __init__ but without a constraint: {missing}\n"
        f"  constrained but not in __init__: {extra}"
    )


def test_documented_parameters_match_signature(estimator_class):
    cls = estimator_class
    signature = list(signature_parameters(cls))
    documented = [param.name for param in documented_parameters(cls)]
    problems = []
    undocumented = [name for name in signature if name not in documented]
    if undocumented:
        problems.append(f"in __init__ but not documented: {undocumented}")
    unknown = [name for name in documented if name not in signature]
    if unknown:
        problems.append(f"documented but not in __init__: {unknown}")
    duplicated = sorted({name for name in documented if documented.count(name) > 1})
    if duplicated:
        problems.append(f"documented more than once: {duplicated}")
    if not problems and documented != signature:
        for position, (sig, doc) in enumerate(zip(signature, documented)):
            if sig != doc:
                problems.append(
                    f"order differs from position {position}: __init__ has {sig!r}, "
                    f"the docstring {doc!r}"
                )
                break
    assert not problems, (
        f"{cls.__name__}: documented Parameters do not match __init__:\n  "
        + "\n  ".join(problems)
    )


def test_documented_defaults_match_signature(estimator_class):
    cls = estimator_class
    signature = signature_parameters(cls)
    problems = []
    for param in documented_parameters(cls):
        if param.name not in signature:
            continue  # reported by test_documented_parameters_match_signature
        actual = signature[param.name]
        try:
            documented = parse_default(param.type)
        except (ValueError, SyntaxError):
            problems.append(
                f"{param.name}: documented default in {param.type!r} is not a Python literal"
            )
            continue
        if actual is inspect.Parameter.empty:
            if documented is not _MISSING:
                problems.append(
                    f"{param.name}: has no default in __init__, but the docstring says "
                    f"default={documented!r}"
                )
        elif documented is _MISSING:
            problems.append(
                f"{param.name}: default={actual!r} in __init__, but the type line "
                f"{param.type!r} gives no default"
            )
        elif not _same_value(documented, actual):
            problems.append(
                f"{param.name}: documented default={documented!r}, __init__ has "
                f"default={actual!r}"
            )
    assert not problems, (
        f"{cls.__name__}: documented defaults differ from __init__:\n  " + "\n  ".join(problems)
    )


def test_parse_default():
    assert parse_default("int, default=8") == 8
    assert parse_default("tuple of int, default=(64,)") == (64,)
    assert parse_default('str or torch.device, default="auto"') == "auto"
    assert parse_default("int or None, default=None") is None
    assert parse_default("bool, default=True") is True
    assert parse_default("float, default=1e-3") == 1e-3
    assert parse_default("float") is _MISSING
    with pytest.raises(ValueError):
        parse_default("object, default=torch.device('cpu')")


@pytest.fixture(scope="module")
def fitted():
    """One tiny fitted instance per estimator, fitted on a DataFrame.

    Column names that are strings make ``feature_names_in_`` exist.
    """
    pd = pytest.importorskip("pandas")
    X = np.random.RandomState(0).normal(size=(30, 4))
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    estimators = {}
    for cls in ESTIMATORS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            targets = (X.to_numpy()[:, :2],) if issubclass(cls, skae.AutoencoderRegressor) else ()
            params = dict(max_iter=2, random_state=0)
            if cls is skae.AutoencoderEnsembleDetector:  # members are detectors
                params = dict(estimator=skae.AutoencoderAnomalyDetector(max_iter=2),
                              n_estimators=2, random_state=0)
            estimators[cls] = cls(**params).fit(X, *targets)
    return estimators


def test_documented_attributes_match_fitted(estimator_class, fitted):
    cls = estimator_class
    est = fitted[cls]
    documented = documented_attributes(cls)
    problems = []
    no_underscore = [name for name in documented if not name.endswith("_")]
    if no_underscore:
        problems.append(f"documented attributes not ending in '_': {no_underscore}")
    duplicated = sorted({name for name in documented if documented.count(name) > 1})
    if duplicated:
        problems.append(f"documented more than once: {duplicated}")
    absent = [name for name in documented if not hasattr(est, name)]
    if absent:
        problems.append(f"documented but absent after fit: {absent}")
    public = [name for name in vars(est) if name.endswith("_") and not name.startswith("_")]
    undocumented = [name for name in public if name not in documented]
    if undocumented:
        problems.append(f"set by fit but not documented: {undocumented}")
    assert not problems, (
        f"{cls.__name__}: documented Attributes do not match the fitted estimator:\n  "
        + "\n  ".join(problems)
    )
