"""The admin index Health card: reconcile grade, worst drifts, last run and reasons."""

from __future__ import annotations

from django import template

from reconcile import selectors

register = template.Library()


@register.inclusion_tag("reconcile/health_card.html", takes_context=True)
def reconcile_health_card(context) -> dict:
    """Context of the card; empty for users who may not see reconcile runs."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("reconcile.view_reconcilerun"):
        return {"health": None}
    return {"health": selectors.reconcile_health(reason="admin")}
