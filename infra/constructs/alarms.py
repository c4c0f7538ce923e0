"""What most of the stack's alarms share: they fire on any occurrence of what they count."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_cloudwatch as cloudwatch

# Above zero in a period is an alarm; a period with no data is one where nothing happened.
ON_ANY_OCCURRENCE: dict[str, Any] = {
    "threshold": 0,
    "comparison_operator": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    "treat_missing_data": cloudwatch.TreatMissingData.NOT_BREACHING,
}
