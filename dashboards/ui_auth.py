"""Reviewer sign-in: the site's OpenID Connect provider when configured, else the local registry."""

from __future__ import annotations

import logging
import time

import streamlit as st

from medgan.errors import ReviewError
from medgan.review.registry import Identity, ReviewerRegistry

__all__ = ["oidc_configured", "current_identity", "sign_in_sidebar"]

logger = logging.getLogger(__name__)


def oidc_configured() -> bool:
    """Return whether ``.streamlit/secrets.toml`` has an ``[auth]`` section for ``st.login``."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - a missing or unreadable secrets file means no provider
        return False


def current_identity(registry: ReviewerRegistry) -> Identity | None:
    """Return the signed-in reviewer, or None.

    With a provider, the provider's e-mail address must also be in the registry, which
    assigns the role; without one, only a registry password sign-in counts.
    """
    if oidc_configured():
        if not st.user.get("is_logged_in", False):
            return None
        email = str(st.user.get("email") or "")
        role = registry.role_of(email) if email else None
        if role is None:
            st.sidebar.error(f"{email or 'This account'} is not registered as a reviewer; ask an administrator to run `medgan reviewers add {email or 'EMAIL'} --role reviewer --oidc`.")
            return None
        return Identity(name=email, role=role, source="oidc")
    identity = st.session_state.get("identity")
    if identity is not None and registry.role_of(identity.name) != identity.role:
        # Removed from the registry or given another role since signing in.
        st.session_state.pop("identity", None)
        st.session_state["signin_error"] = "Your registration changed; sign in again."
        logger.info("signed out %s because the registry entry changed", identity.name)
        return None
    return identity


MAX_FAILED_SIGN_INS = 5
LOCKOUT_S = 60.0


def _sign_in(registry: ReviewerRegistry) -> None:
    name = st.session_state.get("signin_name", "")
    password = st.session_state.get("signin_password", "")
    st.session_state["signin_password"] = ""
    now = time.monotonic()
    failures = [moment for moment in st.session_state.get("signin_failures", []) if now - moment < LOCKOUT_S]
    if len(failures) >= MAX_FAILED_SIGN_INS:
        st.session_state["signin_error"] = f"Too many failed sign-ins; wait {LOCKOUT_S:.0f} s and try again."
        return
    try:
        identity = registry.authenticate(name, password) if name and password else None
    except ReviewError as error:
        st.session_state["signin_error"] = str(error)
        return
    if identity is None:
        st.session_state["signin_failures"] = [*failures, now]
        st.session_state["signin_error"] = "Sign-in failed: unknown name or wrong password."
        logger.warning("failed local sign-in attempt")
        return
    st.session_state["identity"] = identity
    st.session_state.pop("signin_error", None)
    logger.info("reviewer %s signed in", identity.name)


def _sign_out() -> None:
    st.session_state.pop("identity", None)


def sign_in_sidebar(registry: ReviewerRegistry) -> Identity | None:
    """Draw the sign-in controls in the sidebar and return the current identity."""
    identity = current_identity(registry)
    if identity is not None:
        st.sidebar.success(f"Signed in as {identity.name} ({identity.role})")
        if identity.source == "oidc":
            st.sidebar.button("Sign out", key="sign_out", on_click=st.logout)
        else:
            st.sidebar.button("Sign out", key="sign_out", on_click=_sign_out)
        return identity
    if oidc_configured():
        st.sidebar.button("Sign in with the hospital account", key="sign_in_oidc", on_click=st.login)
        return None
    st.sidebar.text_input("Reviewer name", key="signin_name")
    st.sidebar.text_input("Password", key="signin_password", type="password")
    st.sidebar.button("Sign in", key="sign_in", on_click=_sign_in, args=(registry,))
    if st.session_state.get("signin_error"):
        st.sidebar.error(st.session_state["signin_error"])
    return None
