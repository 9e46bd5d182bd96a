"""A single-flight lease for a state machine: one execution at a time does the work.

One DynamoDB item, `{"lease_id": "<name>", "holder": <execution ARN>, "acquired_at": <time>}`.

Take lease ── (written: no item was there) ─► `on_taken`
  held ─► Read lease ─► Lease holder still running? (DescribeExecution of the holder)
            RUNNING ─► `on_held` (this execution coalesces into the holder's run)
            ended, or gone ─► Take over lease (conditional on the same stale holder) ─► `on_taken`
                              someone else took it over first ─► `on_held`

The lease expires with its holder: an execution that timed out, was aborted or failed without
releasing (or whose release failed) holds nothing once it has stopped, so no clock arithmetic is
needed (Step Functions' JSONPath has none). `release()` deletes the item only if this execution
holds it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.common.nag import acknowledge
from stacks.common.retries import DYNAMODB_TRANSIENT

CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"
# How an aws-sdk integration names the error of a DescribeExecution for an execution that is gone.
HOLDER_GONE = "Sfn.ExecutionDoesNotExistException"
# What DynamoDB asks of a caller of a table under a customer managed key: Decrypt (and DescribeKey)
# to use the table key for reads, Encrypt and GenerateDataKey for writes. The table's tasks grant
# only the DynamoDB actions; without these the first "Take lease" fails with an AccessDenied.
TABLE_KEY_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


def control_table(
    scope: Construct, id_: str, *, partition_key: str, key: kms.IKey, removal_policy: RemovalPolicy, why_no_backup: str
) -> dynamodb.Table:
    """A small on-demand table of control items (a lease, task tokens), under the customer managed key."""
    table = dynamodb.Table(
        scope,
        id_,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        removal_policy=removal_policy,
    )
    acknowledge(table, why_no_backup, "AwsSolutions-DDB3")
    return table


class SingleFlightLease(Construct):
    """The lease table (`.table`) and the states that take and release the lease."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        lease_name: str,
        key: kms.IKey,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id_)
        self.lease_name = lease_name
        self._table_key = key
        self.table = control_table(
            self,
            "Table",
            partition_key="lease_id",
            key=key,
            removal_policy=removal_policy,
            why_no_backup="One lease item that lives only while a run does; there is nothing to restore.",
        )

    def _key(self) -> dict[str, tasks.DynamoAttributeValue]:
        return {"lease_id": tasks.DynamoAttributeValue.from_string(self.lease_name)}

    def _put(self, id_: str, *, condition: str, values: dict | None = None) -> tasks.DynamoPutItem:
        put = tasks.DynamoPutItem(
            self,
            id_,
            table=self.table,
            item={
                **self._key(),
                "holder": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.execution_id),
                "acquired_at": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
            },
            condition_expression=condition,
            expression_attribute_values=values,
            result_path=sfn.JsonPath.DISCARD,
        )
        DYNAMODB_TRANSIENT.apply(put)
        return put

    def take(self, *, on_taken: sfn.IChainable, on_held: sfn.IChainable, prefix: str = "") -> sfn.TaskStateBase:
        """`Take lease` and its takeover path; continues at `on_taken` or `on_held`."""
        take = self._put(f"{prefix}Take lease", condition="attribute_not_exists(lease_id)")
        take.next(on_taken)
        read = self.read(self, f"{prefix}Read lease")
        describe = self.describe_holder(self, f"{prefix}Describe lease holder")
        take_over = self._put(
            f"{prefix}Take over lease",
            condition="holder = :stale",
            values={":stale": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.lease.Item.holder.S"))},
        )
        take_over.next(on_taken)
        take_over.add_catch(on_held, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        gone = sfn.Pass(
            self,
            f"{prefix}Lease holder gone",
            result=sfn.Result.from_object({"status": "GONE"}),
            result_path="$.lease.holder_state",
        )
        gone.next(take_over)
        describe.add_catch(gone, errors=[HOLDER_GONE], result_path=sfn.JsonPath.DISCARD)
        # The holder released between the failed take and the read: the item is gone, take it now.
        take_again = self._put(f"{prefix}Take released lease", condition="attribute_not_exists(lease_id)")
        take_again.next(on_taken)
        take_again.add_catch(on_held, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        released_meanwhile = (
            sfn.Choice(self, f"{prefix}Lease still held?")
            .when(sfn.Condition.is_present("$.lease.Item.holder.S"), describe)
            .otherwise(take_again)
        )
        holder_running = (
            sfn.Choice(self, f"{prefix}Lease holder running?")
            .when(sfn.Condition.string_equals("$.lease.holder_state.status", "RUNNING"), on_held)
            .otherwise(take_over)
        )
        read.next(released_meanwhile)
        describe.next(holder_running)
        take.add_catch(read, errors=[CONDITION_FAILED], result_path=sfn.JsonPath.DISCARD)
        return take

    def read(self, scope: Construct, id_: str) -> tasks.DynamoGetItem:
        """GetItem of the lease (consistent) into `$.lease`: `$.lease.Item.holder.S` while held."""
        read = tasks.DynamoGetItem(
            scope, id_, table=self.table, key=self._key(), consistent_read=True, result_path="$.lease"
        )
        DYNAMODB_TRANSIENT.apply(read)
        return read

    def describe_holder(self, scope: Construct, id_: str) -> sfn.CustomState:
        """DescribeExecution of `$.lease.Item.holder.S` into `$.lease.holder_state.status`; a holder
        that no longer exists fails it with HOLDER_GONE."""
        # A raw aws-sdk task: CallAwsService would grant DescribeExecution on "*", and the policy
        # that names the holder's executions must be separate (see grant_holder_lookup).
        return sfn.CustomState(
            scope,
            id_,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(scope).partition}:states:::aws-sdk:sfn:describeExecution",
                "Parameters": {"ExecutionArn.$": "$.lease.Item.holder.S"},
                "ResultSelector": {"status.$": "$.Status"},
                "ResultPath": "$.lease.holder_state",
            },
        )

    def release(self, id_: str) -> tasks.DynamoDeleteItem:
        """Delete the lease if this execution holds it (a no-op otherwise)."""
        release = tasks.DynamoDeleteItem(
            self,
            id_,
            table=self.table,
            key=self._key(),
            condition_expression="holder = :me",
            expression_attribute_values={":me": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.execution_id)},
            result_path=sfn.JsonPath.DISCARD,
        )
        DYNAMODB_TRANSIENT.apply(release)
        return release

    def grant_table_key(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` (the machine whose states take and release the lease) use the table's key."""
        self._table_key.grant(grantee, *TABLE_KEY_ACTIONS)

    def grant_table_key_read(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` (a machine that only reads the lease: `read()` grants its GetItem) decrypt it."""
        self._table_key.grant(grantee, "kms:Decrypt", "kms:DescribeKey")

    @staticmethod
    def holder_executions_arn(state_machine: sfn.StateMachine) -> str:
        """The ARN pattern of `state_machine`'s executions (the holders its lease can name)."""
        return state_machine.stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def grant_holder_lookup(self, state_machine: sfn.StateMachine) -> None:
        """Let `state_machine` describe its own executions (the lease holders it checks).

        A separate policy: the machine's default policy cannot name the machine's own ARN (the
        machine depends on that policy, a cycle).
        """
        policy = iam.Policy(
            self,
            "HolderLookup",
            statements=[
                iam.PolicyStatement(
                    # Is the holder still running? (DescribeExecution of one of its own executions)
                    actions=["states:DescribeExecution"],
                    resources=[self.holder_executions_arn(state_machine)],
                )
            ],
        )
        policy.attach_to_role(state_machine.role)
