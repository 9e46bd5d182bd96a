"""The one alarm recipe: any data point at or above one in a period notifies the topic."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct


def alarm_on_any(
    scope: Construct,
    id_: str,
    metric: cloudwatch.Metric | cloudwatch.MathExpression,
    *,
    description: str,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """An alarm on `metric` >= 1 that notifies `topic`; no data is not a breach (nothing happened)."""
    alarm = metric.create_alarm(
        scope,
        id_,
        alarm_description=description,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
    return alarm
