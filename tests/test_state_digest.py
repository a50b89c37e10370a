"""The state digest is versioned: a field added to the state leaves every existing log's digests as they were."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simledger.ledger.reexecute import reexecute
from simledger.ledger.replay import load_state
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log, verify_state_digests
from simledger.projections import state as state_module
from simledger.projections.state import Digested, state_digest

FIXTURE = Path(__file__).parent / "fixtures" / "format_v1.db"


@pytest.fixture
def reputation(monkeypatch):
    """A dummy rule's state: a per-account reputation (default 0) and a state-wide pool (default 0)."""
    monkeypatch.setattr(state_module, "DIGEST_EXTENSIONS",
                        [Digested("account", "reputation", 0), Digested("state", "insurance_pool", 0)])


@pytest.fixture
def fixture_copy(tmp_path) -> Path:
    path = tmp_path / "format_v1.db"
    shutil.copyfile(FIXTURE, path)
    return path


def fixture_state():
    with Store(FIXTURE) as store:
        return load_state(store, use_checkpoints=False)


def test_a_new_field_at_its_default_leaves_the_digest_as_version_1():
    state = fixture_state()
    before = state_digest(state)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(state_module, "DIGEST_EXTENSIONS", [Digested("account", "reputation", 0)])
        assert state_digest(state) == before, "absent (an old state) is the default"
        for account in state.accounts.values():
            account.reputation = 0
        assert state_digest(state) == before, "present at its default"
        next(iter(state.accounts.values())).reputation = 3
        assert state_digest(state) != before
        extensions = state_module.get_digest_extensions(state)
    assert extensions == {"account": {next(iter(state.accounts)): {"reputation": 3}}}


def test_the_format_v1_fixture_still_verifies_with_a_new_field(reputation, fixture_copy):
    assert verify_log(fixture_copy).ok
    result = verify_state_digests(fixture_copy)
    assert result.ok, result.message
    reexecuted = reexecute(fixture_copy)
    assert reexecuted.ok, reexecuted.message


def test_a_state_wide_field_counts_once_it_leaves_its_default(reputation):
    state = fixture_state()
    before = state_digest(state)
    state.insurance_pool = 10
    assert state_module.get_digest_extensions(state) == {"state": {"insurance_pool": 10}}
    assert state_digest(state) != before
