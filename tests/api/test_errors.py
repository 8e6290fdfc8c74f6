"""The error tree is honoured (issue 20, item 3): every class of scanner.errors, and the subclasses
modules add, is answered by the service with the status and code it declares (one handler) and ends
a command with the exit code it declares; the exit codes that `--help` lists come from the classes.

Before, nothing in api/ read the tree: an uncaught error was a 500 `internal`, and enrollment
turned every refusal into 422 `enrollment_refused`, so a person already enrolled got 422 where
docs/security.md promises 409 `already_enrolled`."""

from __future__ import annotations

import click
import pytest
import requests
from click.testing import CliRunner

import scanner.fingerprints.modelfile
import scanner.registry  # noqa: F401 - defines subclasses of the tree
from cli.common import EXIT_CODES, translate_errors
from scanner import errors


def _classes():
    return errors.tree()


def test_the_tree_is_complete_and_its_codes_are_distinct():
    classes = _classes()
    assert {
        "SimilarSubject",
        "EnrollmentRefused",
        "ModelChanged",
        "VerificationRefused",
        "NothingReadableError",
        "VerificationFailed",
    } <= {c.__name__ for c in classes}
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), codes  # one class, one code a client can branch on
    for cls in classes:
        assert 400 <= cls.http_status < 600 and cls.exit_code in (1, 2, 3, 4, 5), cls


def test_the_exit_codes_in_help_come_from_the_classes():
    for cls in (
        errors.UsageError,
        errors.WorkspaceError,
        errors.DependencyError,
        errors.NothingReadableError,
        errors.VerificationFailed,
        errors.AcquisitionError,
    ):
        assert cls.summary in " ".join(EXIT_CODES.split()), cls
        assert f"{cls.exit_code} " in EXIT_CODES
    assert f"{errors.INTERRUPTED_EXIT} interrupted" in EXIT_CODES


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_a_command_exits_with_the_class_s_code(cls):
    @click.command()
    @translate_errors
    def command():
        raise cls("what went wrong, and what to do")

    result = CliRunner().invoke(command, [])
    assert result.exit_code == cls.exit_code
    assert "Error: what went wrong, and what to do" in result.output


def test_the_service_answers_each_class_with_its_status_and_code(live):
    app, url = live()
    classes = {c.__name__: c for c in _classes()}

    def fail(name: str):
        raise classes[name](f"{name} happened")

    app.add_api_route("/v1/test-error/{name}", fail, methods=["GET"])
    app.add_api_route("/test-error/{name}", fail, methods=["GET"])  # a page's path
    for name, cls in classes.items():
        r = requests.get(f"{url}/v1/test-error/{name}")
        assert r.status_code == cls.http_status, (name, r.text)
        assert r.json() == {"error": {"code": cls.code, "message": f"{name} happened"}}
    page = requests.get(f"{url}/test-error/SubjectNotFound")  # the pages answer with a page
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "SubjectNotFound happened" in page.text


@pytest.mark.facedata
def test_enrolling_someone_already_enrolled_is_409_already_enrolled(live):
    from tests.api.test_service import COHORT
    from tests.conftest import facedata_path, lfw_people, reference_cohort

    app, url = live()
    reference_cohort(app.state.service.root, lfw_people(exclude=("Ana_Palacio",))[:COHORT])
    photos = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    version = requests.get(f"{url}/v1/consent-text").json()["version"]

    def enroll(some):
        return requests.post(
            f"{url}/v1/subjects",
            data={"consent": "true", "consent_version": version},
            files=[("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in some],
        )

    assert enroll(photos[:3]).status_code == 200
    again = enroll([photos[3], photos[4], photos[5]])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_enrolled", again.text
    refused = enroll([photos[0]] + sorted(facedata_path("lfw_deepfunneled", "Abdullah_Gul").iterdir())[:2])
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "enrollment_refused", refused.text
