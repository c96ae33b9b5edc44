"""AuthService: register, login, refresh (rotation), logout, access tokens."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from chatcore.errors import Conflict, Unauthorized, ValidationFailed
from chatcore.models import RefreshToken
from chatcore.services.auth import hash_refresh_token
from chatcore.testing import EPOCH, ChatKit, in_memory_chat

PASSWORD = "correct horse battery"


async def test_register_creates_the_user_and_logs_them_in(kit: ChatKit) -> None:
    session = await kit.chat.auth.register("alice", PASSWORD, "Alice Liddell")

    assert session.user.username == "alice"
    assert session.user.display_name == "Alice Liddell"
    assert session.user.created_at == EPOCH
    assert session.user.last_seen_at is None
    assert session.expires_in == 900
    assert session.refresh_token
    assert kit.chat.auth.authenticate(session.access_token) == session.user.id
    assert await kit.chat.users.get(session.user.id) == session.user


async def test_register_defaults_display_name_to_username_and_trims_it(kit: ChatKit) -> None:
    plain = await kit.chat.auth.register("alice", PASSWORD)
    padded = await kit.chat.auth.register("bob", PASSWORD, "  Bob  ")

    assert plain.user.display_name == "alice"
    assert padded.user.display_name == "Bob"


async def test_users_get_distinct_ids(kit: ChatKit) -> None:
    a = await kit.chat.auth.register("alice", PASSWORD)
    b = await kit.chat.auth.register("bob", PASSWORD)

    assert a.user.id != b.user.id


@pytest.mark.parametrize("taken", ["alice", "ALICE", "Alice", "aLiCe"])
async def test_register_refuses_a_taken_username_case_insensitively(
    kit: ChatKit, taken: str
) -> None:
    await kit.chat.auth.register("alice", PASSWORD)

    with pytest.raises(Conflict):
        await kit.chat.auth.register(taken, "another password")


@pytest.mark.parametrize(
    "username",
    ["", "a" * 65, "has space", "semi;colon", "dollar$", "ünïcode", "tab\tname", "x\n"],
)
async def test_register_rejects_bad_usernames(kit: ChatKit, username: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.auth.register(username, PASSWORD)

    assert err.value.details == {"field": "username"}
    assert err.value.code == "validation_error"


@pytest.mark.parametrize("username", ["abc", "a" * 32, "a.b-c_d", "User_01", "0.9-x"])
async def test_register_accepts_usernames_at_the_edges(kit: ChatKit, username: str) -> None:
    session = await kit.chat.auth.register(username, PASSWORD)

    assert session.user.username == username


@pytest.mark.parametrize("password", ["", "five5", "x" * 257])
async def test_register_rejects_bad_passwords(kit: ChatKit, password: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.auth.register("alice", password)

    assert err.value.details == {"field": "password"}


@pytest.mark.parametrize("password", ["eight888", "x" * 256, "        "])
async def test_register_accepts_passwords_at_the_edges(kit: ChatKit, password: str) -> None:
    await kit.chat.auth.register("alice", password)

    session = await kit.chat.auth.login("alice", password)
    assert session.user.username == "alice"


@pytest.mark.parametrize("display_name", ["", "   ", "x" * 65])
async def test_register_rejects_bad_display_names(kit: ChatKit, display_name: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.auth.register("alice", PASSWORD, display_name)

    assert err.value.details == {"field": "displayName"}


async def test_a_refused_registration_stores_nothing(kit: ChatKit) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.auth.register("alice", "short")
    with pytest.raises(ValidationFailed):
        await kit.chat.auth.register("alice", PASSWORD, "")

    # The username is still free and nobody can log in with it.
    with pytest.raises(Unauthorized):
        await kit.chat.auth.login("alice", "short")
    session = await kit.chat.auth.register("alice", PASSWORD)
    assert session.user.username == "alice"


async def test_login_returns_a_fresh_session_for_the_same_user(kit: ChatKit) -> None:
    registered = await kit.chat.auth.register("alice", PASSWORD)

    session = await kit.chat.auth.login("alice", PASSWORD)

    assert session.user == registered.user
    assert session.access_token != registered.access_token
    assert session.refresh_token != registered.refresh_token
    assert kit.chat.auth.authenticate(session.access_token) == registered.user.id


async def test_login_username_is_case_insensitive(kit: ChatKit) -> None:
    registered = await kit.chat.auth.register("Alice", PASSWORD)

    session = await kit.chat.auth.login("aLICE", PASSWORD)

    assert session.user.id == registered.user.id
    assert session.user.username == "Alice"


async def test_wrong_password_and_unknown_user_are_indistinguishable(kit: ChatKit) -> None:
    await kit.chat.auth.register("alice", PASSWORD)

    with pytest.raises(Unauthorized) as wrong_password:
        await kit.chat.auth.login("alice", PASSWORD + "!")
    with pytest.raises(Unauthorized) as unknown_user:
        await kit.chat.auth.login("nobody", PASSWORD)
    with pytest.raises(Unauthorized) as unknown_again:
        await kit.chat.auth.login("nobody-else", PASSWORD)

    assert wrong_password.value.message == unknown_user.value.message
    assert unknown_user.value.message == unknown_again.value.message
    assert wrong_password.value.details == unknown_user.value.details is None
    assert wrong_password.value.code == unknown_user.value.code == "unauthorized"


async def test_refresh_rotates_the_refresh_token(kit: ChatKit) -> None:
    first = await kit.chat.auth.register("alice", PASSWORD)

    second = await kit.chat.auth.refresh(first.refresh_token)

    assert second.user == first.user
    assert second.refresh_token != first.refresh_token
    assert kit.chat.auth.authenticate(second.access_token) == first.user.id
    # The new one works, once (replaying the old one would revoke the family: below).
    third = await kit.chat.auth.refresh(second.refresh_token)
    assert third.user == first.user
    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(second.refresh_token)
    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(first.refresh_token)


async def test_concurrent_refreshes_of_one_token_let_exactly_one_through(
    yielding_kit: ChatKit,
) -> None:
    session = await yielding_kit.chat.auth.register("alice", PASSWORD)

    results = await asyncio.gather(
        *(yielding_kit.chat.auth.refresh(session.refresh_token) for _ in range(5)),
        return_exceptions=True,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, Unauthorized) for r in results if r not in winners)


async def test_each_session_has_its_own_refresh_token(kit: ChatKit) -> None:
    phone = await kit.chat.auth.register("alice", PASSWORD)
    laptop = await kit.chat.auth.login("alice", PASSWORD)

    await kit.chat.auth.refresh(phone.refresh_token)

    assert (await kit.chat.auth.refresh(laptop.refresh_token)).user == laptop.user


async def test_logout_revokes_that_refresh_token_only(kit: ChatKit) -> None:
    phone = await kit.chat.auth.register("alice", PASSWORD)
    laptop = await kit.chat.auth.login("alice", PASSWORD)

    await kit.chat.auth.logout(phone.user.id, phone.refresh_token)

    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(phone.refresh_token)
    assert (await kit.chat.auth.refresh(laptop.refresh_token)).user == laptop.user


async def test_logout_is_idempotent_and_accepts_unknown_tokens(kit: ChatKit) -> None:
    session = await kit.chat.auth.register("alice", PASSWORD)

    await kit.chat.auth.logout(session.user.id, session.refresh_token)
    await kit.chat.auth.logout(session.user.id, session.refresh_token)
    await kit.chat.auth.logout(session.user.id, "never-issued")

    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(session.refresh_token)


async def test_refresh_token_expires_after_its_ttl(kit: ChatKit) -> None:
    session = await kit.chat.auth.register("alice", PASSWORD)

    kit.clock.advance(days=30)

    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(session.refresh_token)


async def test_refresh_token_works_until_just_before_expiry(kit: ChatKit) -> None:
    session = await kit.chat.auth.register("alice", PASSWORD)

    kit.clock.advance(days=30, milliseconds=-1)

    assert (await kit.chat.auth.refresh(session.refresh_token)).user == session.user


async def test_refresh_ttl_is_configurable() -> None:
    kit = in_memory_chat(refresh_ttl=timedelta(minutes=5))
    session = await kit.chat.auth.register("alice", PASSWORD)
    renewed = await kit.chat.auth.refresh(session.refresh_token)

    kit.clock.advance(minutes=5)

    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(renewed.refresh_token)


@pytest.mark.parametrize("token", ["", "garbage", "access:nobody:1"])
async def test_refresh_refuses_unknown_tokens(kit: ChatKit, token: str) -> None:
    await kit.chat.auth.register("alice", PASSWORD)

    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(token)


async def test_refresh_for_a_user_that_no_longer_exists_is_refused(kit: ChatKit) -> None:
    await kit.storage.refresh_tokens.add(
        RefreshToken(
            token_hash=hash_refresh_token("orphan"),
            user_id="gone",
            created_at=EPOCH,
            expires_at=EPOCH + timedelta(days=1),
        )
    )

    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh("orphan")


async def test_refresh_tokens_are_stored_only_as_hashes(kit: ChatKit) -> None:
    session = await kit.chat.auth.register("alice", PASSWORD)

    # Revoking by the raw token value does nothing; the store is keyed by the hash.
    await kit.storage.refresh_tokens.revoke(session.refresh_token, session.user.id)
    renewed = await kit.chat.auth.refresh(session.refresh_token)

    await kit.storage.refresh_tokens.revoke(
        hash_refresh_token(renewed.refresh_token), session.user.id
    )
    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(renewed.refresh_token)


async def test_revoking_all_of_a_users_refresh_tokens(kit: ChatKit) -> None:
    alice = await kit.chat.auth.register("alice", PASSWORD)
    alice_again = await kit.chat.auth.login("alice", PASSWORD)
    bob = await kit.chat.auth.register("bob", PASSWORD)

    await kit.storage.refresh_tokens.revoke_all_for_user(alice.user.id)

    for token in (alice.refresh_token, alice_again.refresh_token):
        with pytest.raises(Unauthorized):
            await kit.chat.auth.refresh(token)
    assert (await kit.chat.auth.refresh(bob.refresh_token)).user == bob.user


@pytest.mark.parametrize("token", ["", "nonsense", "access:someone:999"])
async def test_authenticate_refuses_tokens_it_did_not_issue(kit: ChatKit, token: str) -> None:
    await kit.chat.auth.register("alice", PASSWORD)

    with pytest.raises(Unauthorized):
        kit.chat.auth.authenticate(token)


async def test_authenticate_refuses_revoked_access_tokens(kit: ChatKit) -> None:
    session = await kit.chat.auth.register("alice", PASSWORD)

    kit.access_tokens.revoke_all()

    with pytest.raises(Unauthorized):
        kit.chat.auth.authenticate(session.access_token)


async def test_login_with_an_oversized_password_is_refused_without_hashing(kit, alice):
    with pytest.raises(Unauthorized):
        await kit.chat.auth.login("alice", "x" * 10_000)


async def test_logout_leaves_other_users_tokens_alone(kit: ChatKit) -> None:
    alice = await kit.chat.auth.register("alice", PASSWORD)
    mallory = await kit.chat.auth.register("mallory", PASSWORD)

    await kit.chat.auth.logout(mallory.user.id, alice.refresh_token)

    assert (await kit.chat.auth.refresh(alice.refresh_token)).user == alice.user


async def test_replaying_a_rotated_out_token_revokes_its_whole_family(kit: ChatKit) -> None:
    stolen = await kit.chat.auth.register("alice", PASSWORD)
    other_device = await kit.chat.auth.login("alice", PASSWORD)
    first = await kit.chat.auth.refresh(stolen.refresh_token)
    current = await kit.chat.auth.refresh(first.refresh_token)

    with pytest.raises(Unauthorized):
        await kit.chat.auth.refresh(stolen.refresh_token)  # the replay

    for token in (current.refresh_token, first.refresh_token, stolen.refresh_token):
        with pytest.raises(Unauthorized):
            await kit.chat.auth.refresh(token)
    # Another login is another family.
    assert (await kit.chat.auth.refresh(other_device.refresh_token)).user == stolen.user


async def test_me_of_a_user_that_is_gone_is_unauthorized(kit: ChatKit) -> None:
    with pytest.raises(Unauthorized):
        await kit.chat.users.me("deleted-user")
