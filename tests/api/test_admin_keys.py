"""Key lifecycle through the AdminService: several named keys, revoke, rotate, expiry,
the in-process key cache, and secrets never echoed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import timestamp_pb2

from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import job_service_pb2 as job_pb
from saaslitellm.v1 import tenancy_pb2
from server.domain import pagination
from tests.api.admin_support import bearer, fails, new_alias, new_group, new_org, new_team
from tests.api.conftest import ADMIN
from tests.conftest import ADMIN_KEY

Key = tenancy_pb2.TeamKey
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def at(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def works(jobs, key: str) -> None:
    job = await jobs.CreateJob(job_pb.CreateJobRequest(job_type="auth"), metadata=bearer(key))
    await jobs.GetJob(job_pb.GetJobRequest(job_id=job.job_id), metadata=bearer(key))


async def refused(jobs, key: str) -> None:
    await fails(
        jobs.CreateJob(job_pb.CreateJobRequest(job_type="auth"), metadata=bearer(key)),
        UNAUTHENTICATED,
        "INVALID_API_KEY",
    )


async def team_with_group(admin):
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    return await new_team(admin, org, group, credits=100)


async def test_a_blank_key_name_is_refused_not_made_a_second_default(admin):
    """A name of spaces was a key beside "default" that lists as if it had no name."""
    team = await team_with_group(admin)
    for name in ("  ", "\u200b"):
        error = await fails(
            admin.CreateTeamKey(pb.CreateTeamKeyRequest(team_id=team.team_id, name=name), metadata=ADMIN),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            "name",
        )
        assert "must not be blank" in error.details()
    listed = await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id), metadata=ADMIN)
    assert [k.name for k in listed.keys] == ["default"]


async def test_named_keys_are_shown_once_and_listed_without_secrets(admin, jobs):
    team = await team_with_group(admin)
    staging = await admin.CreateTeamKey(pb.CreateTeamKeyRequest(team_id=team.team_id, name="staging"), metadata=ADMIN)
    assert staging.virtual_key.startswith("sk-") and staging.key.key_prefix == staging.virtual_key[:11]
    assert staging.key.name == "staging" and staging.key.state == Key.ACTIVE
    await works(jobs, staging.virtual_key)
    await works(jobs, team.virtual_key)

    listed = await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id), metadata=ADMIN)
    assert [k.name for k in listed.keys] == ["staging", "default"]  # newest first
    wire = listed.SerializeToString()
    for secret in (team.virtual_key, staging.virtual_key):
        assert secret.encode() not in wire and secret[11:].encode() not in wire
    assert all(k.HasField("last_used_at") for k in listed.keys)

    await fails(
        admin.CreateTeamKey(pb.CreateTeamKeyRequest(team_id=team.team_id, name="staging"), metadata=ADMIN),
        grpc.StatusCode.ALREADY_EXISTS,
        "ALREADY_EXISTS",
    )
    await fails(
        admin.CreateTeamKey(
            pb.CreateTeamKeyRequest(
                team_id=team.team_id, name="old", expires_at=at(datetime.now(UTC) - timedelta(seconds=1))
            ),
            metadata=ADMIN,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "expires_at",
    )
    expiring = await admin.CreateTeamKey(
        pb.CreateTeamKeyRequest(team_id=team.team_id, name="ci", expires_at=at(datetime.now(UTC) + timedelta(days=1))),
        metadata=ADMIN,
    )
    assert expiring.key.HasField("expires_at")
    await works(jobs, expiring.virtual_key)


async def test_revocation_is_immediate_even_for_a_cached_key(app, admin, jobs):
    team = await team_with_group(admin)
    other = await admin.CreateTeamKey(pb.CreateTeamKeyRequest(team_id=team.team_id, name="other"), metadata=ADMIN)
    await works(jobs, team.virtual_key)
    hits = app.key_cache.hits
    await works(jobs, team.virtual_key)
    assert app.key_cache.hits >= hits + 2  # CreateJob and GetJob both served from the cache

    revoked = await admin.RevokeTeamKey(
        pb.RevokeTeamKeyRequest(team_id=team.team_id, key_id=team.key_id), metadata=ADMIN
    )
    assert revoked.state == Key.REVOKED and revoked.HasField("revoked_at")
    await refused(jobs, team.virtual_key)
    await works(jobs, other.virtual_key)

    again = await admin.RevokeTeamKey(pb.RevokeTeamKeyRequest(team_id=team.team_id, key_id=team.key_id), metadata=ADMIN)
    assert again.revoked_at == revoked.revoked_at
    only_revoked = await admin.ListTeamKeys(
        pb.ListTeamKeysRequest(team_id=team.team_id, state=Key.REVOKED), metadata=ADMIN
    )
    assert [k.key_id for k in only_revoked.keys] == [team.key_id]
    only_active = await admin.ListTeamKeys(
        pb.ListTeamKeysRequest(team_id=team.team_id, state=Key.ACTIVE), metadata=ADMIN
    )
    assert [k.key_id for k in only_active.keys] == [other.key.key_id]


async def test_another_teams_key_is_not_found(admin):
    mine, theirs = await team_with_group(admin), await team_with_group(admin)
    for call in (
        admin.RevokeTeamKey(pb.RevokeTeamKeyRequest(team_id=mine.team_id, key_id=theirs.key_id), metadata=ADMIN),
        admin.RotateTeamKey(pb.RotateTeamKeyRequest(team_id=mine.team_id, key_id=theirs.key_id), metadata=ADMIN),
    ):
        await fails(call, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    await fails(
        admin.RevokeTeamKey(pb.RevokeTeamKeyRequest(team_id=mine.team_id, key_id="not-a-uuid"), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "key_id",
    )


async def test_rotation_keeps_the_old_key_for_the_grace_period(admin, jobs):
    team = await team_with_group(admin)
    await works(jobs, team.virtual_key)  # cached now
    rotated = await admin.RotateTeamKey(
        pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=team.key_id, grace_period_seconds=3600), metadata=ADMIN
    )
    assert rotated.key.name == "default" and rotated.virtual_key != team.virtual_key
    previous = rotated.previous_key
    assert previous.key_id == team.key_id and previous.replaced_by_key_id == rotated.key.key_id
    grace_end = previous.expires_at.ToDatetime(tzinfo=UTC)
    assert timedelta(minutes=59) < grace_end - datetime.now(UTC) <= timedelta(hours=1)
    await works(jobs, team.virtual_key)
    await works(jobs, rotated.virtual_key)
    await fails(
        admin.RotateTeamKey(pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=team.key_id), metadata=ADMIN),
        grpc.StatusCode.FAILED_PRECONDITION,
        "KEY_NOT_ACTIVE",
    )

    # Rotating again with no grace ends the previous key at once, cached or not.
    third = await admin.RotateTeamKey(
        pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=rotated.key.key_id, grace_period_seconds=0), metadata=ADMIN
    )
    await refused(jobs, rotated.virtual_key)
    await works(jobs, third.virtual_key)
    await works(jobs, team.virtual_key)  # the first key's grace period still runs
    expired = await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id, state=Key.EXPIRED), metadata=ADMIN)
    assert [k.key_id for k in expired.keys] == [rotated.key.key_id]

    # Revoking a key in its grace period ends the grace early.
    await admin.RevokeTeamKey(pb.RevokeTeamKeyRequest(team_id=team.team_id, key_id=team.key_id), metadata=ADMIN)
    await refused(jobs, team.virtual_key)
    await fails(
        admin.RotateTeamKey(pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=team.key_id), metadata=ADMIN),
        grpc.StatusCode.FAILED_PRECONDITION,
        "KEY_NOT_ACTIVE",
    )
    await fails(
        admin.RotateTeamKey(
            pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=third.key.key_id, grace_period_seconds=40 * 86400),
            metadata=ADMIN,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "grace_period_seconds",
    )


async def test_keys_list_in_pages(admin):
    team = await team_with_group(admin)
    for name in ("a", "b", "c", "d"):
        await admin.CreateTeamKey(pb.CreateTeamKeyRequest(team_id=team.team_id, name=name), metadata=ADMIN)
    names, token = [], ""
    while True:
        page = await admin.ListTeamKeys(
            pb.ListTeamKeysRequest(team_id=team.team_id, page_size=2, page_token=token), metadata=ADMIN
        )
        names += [k.name for k in page.keys]
        token = page.next_page_token
        if not token:
            break
    assert names == ["d", "c", "b", "a", "default"]

    # A token is not signed: a forged one (right filters, wrong position) is a clear 400.
    filters = {"team_id": team.team_id, "state": ""}
    forged = json.dumps({"a": ["yesterday", "not-a-uuid"], "f": pagination.fingerprint(filters)})
    token = base64.urlsafe_b64encode(forged.encode()).decode()
    await fails(
        admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id, page_token=token), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "page_token",
    )


async def test_error_messages_never_echo_a_secret(admin, jobs):
    """(The server logs are grepped for secrets by tests/e2e/test_admin_rest.py.)"""
    team = await team_with_group(admin)
    key = await admin.CreateTeamKey(pb.CreateTeamKeyRequest(team_id=team.team_id, name="logs"), metadata=ADMIN)
    await works(jobs, key.virtual_key)
    await admin.RevokeTeamKey(pb.RevokeTeamKeyRequest(team_id=team.team_id, key_id=key.key.key_id), metadata=ADMIN)
    errors = [
        await fails(
            jobs.CreateJob(job_pb.CreateJobRequest(job_type="x"), metadata=bearer(key.virtual_key)),
            UNAUTHENTICATED,
            "INVALID_API_KEY",
        ),
        await fails(
            admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=(("x-admin-key", ADMIN_KEY + "x"),)),
            UNAUTHENTICATED,
            "ADMIN_KEY_REQUIRED",
        ),
    ]
    secrets = (team.virtual_key, key.virtual_key, ADMIN_KEY)
    for error in errors:
        assert not any(s in error.details() or s in str(error.trailing_metadata()) for s in secrets)


async def test_an_admin_refusal_says_whether_the_key_was_missing_wrong_or_a_team_key(admin):
    async def message(metadata) -> str:
        return (
            await fails(
                admin.ListTeams(pb.ListTeamsRequest(), metadata=metadata), UNAUTHENTICATED, "ADMIN_KEY_REQUIRED"
            )
        ).details()

    assert "no admin key was sent" in await message(())
    assert "X-Admin-Key is not valid" in await message((("x-admin-key", "sk-admin-wrong-0123456789"),))
    assert "virtual key cannot call it" in await message(bearer("sk-some-team-key-0123456789"))
