"""SNS: e-mail subscriptions pending until confirmed, as AWS lists them."""

from __future__ import annotations

from typing import Any, cast

from moto.core.responses import ActionResult
from moto.sns import responses as sns_responses

from localrun.emulator.moto.probing import (
    plain_moto,
)
from localrun.emulator.moto.runtime import LocalRuntime, MotoPatch

_PENDING = "PendingConfirmation"


def _listed(subscription: Any) -> dict[str, str]:
    """A subscription as ListSubscriptions(ByTopic) shows it: an unconfirmed one has no ARN yet."""
    pending = subscription.protocol in ("email", "email-json") and not subscription.confirmed
    return {
        "SubscriptionArn": _PENDING if pending else subscription.arn,
        "Owner": subscription.owner,
        "Protocol": subscription.protocol,
        "Endpoint": subscription.endpoint,
        "TopicArn": subscription.topic_arn,
    }


def _apply_email_confirmation(runtime: LocalRuntime) -> None:
    # Only the API's answer changes (moto's own publishing lists subscriptions too, and delivers).
    # The recipient's click is `subscription.confirmed = True` on moto's model (no e-mail is sent).
    for method in ("list_subscriptions", "list_subscriptions_by_topic"):
        original = getattr(sns_responses.SNSResponse, method)

        def listed(self: Any, _original: Any = original) -> ActionResult:
            result = cast(dict[str, Any], _original(self).result)
            return ActionResult({**result, "Subscriptions": [_listed(s) for s in result["Subscriptions"]]})

        runtime.replace(sns_responses.SNSResponse, method, listed)


def _probe_email_confirmation() -> bool:
    import boto3

    with plain_moto():
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="probe")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
        listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        return listed[0]["SubscriptionArn"] != _PENDING


# -- the registry's entries (localrun/emulator/moto/__init__.py lists them) --
SNS_EMAIL_CONFIRMATION = MotoPatch(
    "sns-email-confirmation",
    "an e-mail subscription is confirmed at once; AWS lists it with SubscriptionArn "
    "'PendingConfirmation' until the recipient follows the link in the confirmation message",
    _apply_email_confirmation,
    _probe_email_confirmation,
)
