"""Every exception bevilling defines derives from `BevillingError` (private control flow aside)."""

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

from domain.errors import BevillingError, ConfigurationError, InputError, Refusal, RefusedError

PACKAGES = ("domain", "models", "config", "db", "mail", "loading", "workflow", "flows", "cli",
            "web", "receiver")


def _modules() -> list[ModuleType]:
    modules = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            modules.append(importlib.import_module(info.name))
    return modules


def _own_exceptions() -> list[type[BaseException]]:
    found = {}
    for module in _modules():
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == module.__name__ and not name.startswith("_")):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


EXCEPTIONS = _own_exceptions()


def test_the_walk_finds_the_known_exceptions() -> None:
    names = {e.__name__ for e in EXCEPTIONS}
    assert {"DataFileError", "LinkError", "RequestNotFoundError", "IllegalTransition",
            "RoutingError", "TransientDeliveryError", "ImapNotConfigured", "Refusal",
            "BadForm", "InboundParseError"} <= names


@pytest.mark.parametrize("error", EXCEPTIONS, ids=lambda e: f"{e.__module__}.{e.__qualname__}")
def test_every_exception_derives_from_bevilling_error(error: type[BaseException]) -> None:
    assert issubclass(error, BevillingError)
    assert (error.__doc__ or "").strip(), "each exception class has a docstring"


def test_old_names_keep_working() -> None:
    from workflow.context import ConfigurationError as OldName

    assert OldName is ConfigurationError


def test_the_page_refusal_carries_the_enum() -> None:
    from web.confirm import Refusal as PageRefusal

    refusal = PageRefusal("expired", "en", {"key": "X"})
    assert isinstance(refusal, RefusedError)
    assert refusal.reason is Refusal.EXPIRED
    assert (refusal.language, refusal.facts, refusal.status) == ("en", {"key": "X"}, 410)
    assert PageRefusal(Refusal.INVALID).status == 404
    assert PageRefusal.of(RefusedError(Refusal.USED)).reason is Refusal.USED


def test_every_refusal_reason_has_a_page_text_in_both_languages() -> None:
    from web.texts import REFUSALS

    for language in ("da", "en"):
        assert set(REFUSALS[language]) == set(Refusal)


def test_data_file_errors_are_input_errors() -> None:
    from loading.yaml_lines import DataFileError

    assert issubclass(DataFileError, InputError)
    assert DataFileError.exit_code == 2
