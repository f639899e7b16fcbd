"""infra/template.yaml with CreateTrail=true: the nested trail (infra/trail.yaml) and the pipeline
must fit together. The trail's parameters come from the pipeline's, the trail writes where the
function reads, its key lets the function decrypt, and its feed reaches the queue the function
consumes, allowed by the queue's policy before the first file arrives.
"""

import fnmatch
import unittest

from stack import PSEUDO, Stack, cycle, load
from test_trail import ORG, written_keys

PIPELINE = load("template.yaml")
TRAIL = load("trail.yaml")
ACCOUNT = PSEUDO["AWS::AccountId"]
# What the symbolic references of the pipeline stand for once deployed.
DEPLOYED = {
    "${Queue.Arn}": f"arn:aws:sqs:us-east-1:{ACCOUNT}:parquetrail-Queue-AB12",
    "${FunctionRole.Arn}": f"arn:aws:iam::{ACCOUNT}:role/parquetrail-FunctionRole-CD34",
}
BUCKET = "example-trail-bucket"


def deployed(value):
    for symbol, real in DEPLOYED.items():
        value = value.replace(symbol, real)
    return value


def both(**overrides):
    """The pipeline with CreateTrail=true and these parameters, and the nested trail it creates."""
    pipeline = Stack(PIPELINE, CreateTrail="true", TrailBucketName=BUCKET, **overrides)
    resources = pipeline.resources()
    passed = {k: deployed(v) for k, v in resources["Trail"]["Properties"]["Parameters"].items()}
    return pipeline, resources, Stack(TRAIL, **passed)


def statements(document):
    return {s["Sid"]: s for s in document["Statement"] if "Sid" in s}


CASES = [
    {},
    {"TrailPrefix": "trails/main"},
    {"OrganizationId": ORG, "Trigger": "TrailNotice"},
    {"Trigger": "EventBridge", "TrailKmsEncryption": "false", "TrailName": "org-wide"},
    {"Trigger": "TrailNotice", "TrailPrefix": "p", "ManagementEvents": "WriteOnly", "ExcludeKmsEvents": "true",
     "S3DataEvents": "WriteOnly", "S3DataEventArnPrefixes": "arn:aws:s3:::a/,arn:aws:s3:::b/x/", "InsightTypes": "Both"},
]


class NewTrail(unittest.TestCase):
    def test_rules_pass_and_nothing_is_circular(self):
        for case in CASES:
            with self.subTest(**case):
                pipeline, resources, trail = both(**case)
                self.assertEqual(pipeline.failed_rules(), [])
                self.assertEqual(trail.failed_rules(), [])
                self.assertIsNone(cycle(pipeline.dependencies()))
                self.assertIn("QueuePolicy", resources["Trail"]["DependsOn"], "the feed is allowed before it starts")
                self.assertEqual(resources["Trail"]["Properties"]["TemplateURL"], "./trail.yaml")

    def test_every_parameter_reaches_the_trail(self):
        pipeline, resources, trail = both(**CASES[-1])
        passed = resources["Trail"]["Properties"]["Parameters"]
        self.assertEqual(set(passed) - set(TRAIL["Parameters"]), set(), "parameters trail.yaml does not have")
        # What the pipeline does not pass, the trail takes by default, and nothing it must know.
        self.assertEqual(set(TRAIL["Parameters"]) - set(passed), set())
        selectors = trail.resources()["Trail"]["Properties"]["AdvancedEventSelectors"]
        self.assertEqual(
            [f["StartsWith"] for s in selectors for f in s["FieldSelectors"] if f["Field"] == "resources.ARN"],
            [["arn:aws:s3:::a/", "arn:aws:s3:::b/x/"]],
        )

    def test_the_function_reads_and_decrypts_what_the_trail_writes(self):
        for case in CASES:
            with self.subTest(**case):
                pipeline, resources, trail = both(**case)
                trail_resources = trail.resources()
                self.assertEqual(trail.parameters["BucketName"], BUCKET)
                self.assertEqual(trail_resources["Trail"]["Properties"].get("S3KeyPrefix"), case.get("TrailPrefix"))
                grants = statements(resources["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"])
                read = grants["ReadTrailLogFiles"]["Resource"]
                listed = grants["TellMissingTrailLogFiles"]["Condition"]["StringLike"]["s3:prefix"]
                trail_name = trail.parameters["TrailName"]
                for key in written_keys(case.get("TrailPrefix", ""), case.get("OrganizationId"), trail_name):
                    self.assertTrue(fnmatch.fnmatchcase(f"arn:aws:s3:::{BUCKET}/{key}", read), f"{key} vs {read}")
                    self.assertTrue(fnmatch.fnmatchcase(key, listed), f"{key} vs {listed}")
                if case.get("TrailKmsEncryption", "true") == "true":
                    key_policy = statements(trail_resources["Key"]["Properties"]["KeyPolicy"])
                    principal = key_policy["ReadersDecrypt"]["Principal"]["AWS"]
                    self.assertEqual(principal, [DEPLOYED["${FunctionRole.Arn}"]])
                    self.assertEqual(key_policy["ReadersDecrypt"]["Action"], "kms:Decrypt")
                else:
                    self.assertNotIn("Key", trail_resources)
                self.assertNotIn("TrailKeyPolicy", resources, "the new key's own policy grants the decrypt")

    def test_the_feed_reaches_the_queue_and_the_queue_allows_it(self):
        queue = DEPLOYED["${Queue.Arn}"]
        for case in CASES:
            with self.subTest(**case):
                pipeline, resources, trail = both(**case)
                trigger = case.get("Trigger", "S3Notification")
                allowed = statements(resources["QueuePolicy"]["Properties"]["PolicyDocument"])
                trail_resources = trail.resources()
                bucket = trail_resources["Bucket"]["Properties"]
                if trigger == "TrailNotice":
                    topic = trail_resources["NoticeTopic"]["Properties"]["TopicName"]
                    source = allowed["TrailNotices"]["Condition"]["ArnEquals"]["aws:SourceArn"]
                    self.assertEqual(source, f"arn:aws:sns:us-east-1:{ACCOUNT}:{topic}")
                    self.assertEqual(trail_resources["NoticeSubscription"]["Properties"]["Endpoint"], queue)
                    self.assertNotIn("NotificationConfiguration", bucket)
                elif trigger == "S3Notification":
                    source = allowed["TrailBucketNotifications"]["Condition"]["ArnEquals"]["aws:SourceArn"]
                    self.assertEqual(source, f"arn:aws:s3:::{BUCKET}")
                    (config,) = bucket["NotificationConfiguration"]["QueueConfigurations"]
                    self.assertEqual(config["Queue"], queue)
                    self.assertNotIn("NoticeSubscription", trail_resources)
                else:
                    self.assertIn("ObjectCreatedRule", resources)
                    self.assertIn("TrailBucketEvents", allowed)
                    self.assertEqual(bucket["NotificationConfiguration"]["EventBridgeConfiguration"], {"EventBridgeEnabled": True})
                others = {"TrailNotices", "TrailBucketNotifications", "TrailBucketEvents"} & set(allowed)
                self.assertEqual(len(others), 1, f"one feed allowed, not {others}")
                # Nothing to connect by hand.
                self.assertNotIn("NotificationCommand", pipeline.outputs())


class Parameters(unittest.TestCase):
    def test_every_parameter_is_explained(self):
        for name, spec in PIPELINE["Parameters"].items():
            self.assertGreater(len(spec.get("Description", "")), 30, name)

    def test_every_value_the_pipeline_accepts_the_trail_accepts(self):
        # Passed through unchanged: a value the pipeline took and the trail refused would fail the
        # deployment halfway.
        passed = PIPELINE["Resources"]["Trail"]["Properties"]["Parameters"]
        for child, value in passed.items():
            if not (isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in PIPELINE["Parameters"]):
                continue
            name = value["Ref"]
            mine, theirs = PIPELINE["Parameters"][name], TRAIL["Parameters"][child]
            if "AllowedValues" in theirs:
                self.assertLessEqual(set(map(str, mine.get("AllowedValues", ["anything"]))),
                                     set(map(str, theirs["AllowedValues"])), f"{name} -> {child}")
            if "AllowedPattern" in theirs:
                # The same pattern, or without its empty choice where the pipeline requires a value.
                accepted = [theirs["AllowedPattern"], theirs["AllowedPattern"].removeprefix("^$|")]
                self.assertIn(mine.get("AllowedPattern"), accepted, f"{name} -> {child}")
            if "MinValue" in theirs:
                self.assertGreaterEqual(mine.get("MinValue", -1), theirs["MinValue"], f"{name} -> {child}")
            if "Default" in mine:
                Stack(TRAIL, **{child: str(mine["Default"])})  # raises if the trail refuses it


class ExistingTrail(unittest.TestCase):
    def test_creates_no_trail_and_says_how_to_connect(self):
        for trigger in ["S3Notification", "EventBridge"]:
            with self.subTest(trigger=trigger):
                pipeline = Stack(PIPELINE, TrailBucketName=BUCKET, Trigger=trigger)
                self.assertEqual(pipeline.failed_rules(), [])
                resources = pipeline.resources()
                self.assertNotIn("Trail", resources)
                self.assertIn("NotificationCommand", pipeline.outputs())
                self.assertIsNone(cycle(pipeline.dependencies()))

    def test_refuses_what_needs_a_new_trail(self):
        refused = Stack(PIPELINE, TrailBucketName=BUCKET, Trigger="TrailNotice").failed_rules()
        self.assertEqual(refused, ["TrailNoticeNeedsANewTrail"])
        key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        refused = Stack(PIPELINE, TrailBucketName=BUCKET, CreateTrail="true", TrailKmsKeyArn=key).failed_rules()
        self.assertEqual(refused, ["NewTrailHasItsOwnKey"])


if __name__ == "__main__":
    unittest.main()
