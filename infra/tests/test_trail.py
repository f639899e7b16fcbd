"""infra/trail.yaml rendered under parameter combinations: what lint cannot check.

The bucket policy must allow exactly the paths the trail writes, for exactly this trail; the trail
must wait for the policies CloudTrail checks at creation; the key must let CloudTrail encrypt and
the readers decrypt; and every combination of the event-selection parameters must give selectors
CloudTrail accepts (REFERENCE §7).
"""

import fnmatch
import itertools
import re
import unittest

from stack import PSEUDO, Stack, cycle, load

TEMPLATE = load("trail.yaml")
ACCOUNT = PSEUDO["AWS::AccountId"]
ORG = "o-abcdefghij"
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/"
READER = "arn:aws:iam::111122223333:role/parquetrail-FunctionRole-ABC"

# What CloudTrail writes (REFERENCE §3b), with `{root}` = `[prefix/]AWSLogs/` and `{owner}` =
# `<account>` or `<o-id>/<account>`.
WRITTEN = [
    "{root}{owner}/CloudTrail/eu-west-1/2026/12/03/{account}_CloudTrail_eu-west-1_20261203T1255Z_HdkvFTXOA3Vnhbc1.json.gz",
    "{root}{owner}/CloudTrail-Digest/eu-west-1/2026/12/03/{account}_CloudTrail-Digest_eu-west-1_{trail}_us-east-1_20261203T130000Z.json.gz",
    "{root}{owner}/CloudTrail-Insight/eu-west-1/2026/12/03/{account}_CloudTrail-Insight_eu-west-1_20261203T1255Z_abcdEFGH12345678.json.gz",
]
MEMBER = "444455556666"


def written_keys(prefix, organization, trail):
    """The keys the trail writes: its own account's, and a member account's for an organization trail."""
    root = f"{prefix}/AWSLogs/" if prefix else "AWSLogs/"
    owners = [(ORG + "/" + a, a) for a in (ACCOUNT, MEMBER)] if organization else [(ACCOUNT, ACCOUNT)]
    return [k.format(root=root, owner=o, account=a, trail=trail) for o, a in owners for k in WRITTEN]


def statements(document):
    return {s["Sid"]: s for s in document["Statement"]}


def matches(pattern, key):
    """An IAM resource pattern (`*` any run, `?` one character) against `${Bucket.Arn}/key`."""
    return fnmatch.fnmatchcase("${Bucket.Arn}/" + key, pattern)


def listed(value):
    return value if isinstance(value, list) else [value]


SELECTION = {
    "ManagementEvents": ["All", "ReadOnly", "WriteOnly", "None"],
    "ExcludeKmsEvents": ["true", "false"],
    "ExcludeRdsDataEvents": ["true", "false"],
    "S3DataEvents": ["None", "All", "ReadOnly", "WriteOnly"],
    "S3DataEventArnPrefixes": ["", "arn:aws:s3:::data-bucket/,arn:aws:s3:::other/logs/"],
    "LambdaDataEvents": ["None", "All"],
    "LambdaFunctionArns": ["", "arn:aws:lambda:us-east-1:111122223333:function:pay"],
}


def selections():
    names = list(SELECTION)
    for values in itertools.product(*(SELECTION[n] for n in names)):
        yield dict(zip(names, values))


class BucketPolicy(unittest.TestCase):
    CASES = [
        {},
        {"KeyPrefix": "trails/main"},
        {"OrganizationId": ORG},
        {"OrganizationId": ORG, "KeyPrefix": "o-abcdefghij", "TrailName": "org-trail"},
    ]

    def test_allows_exactly_the_paths_the_trail_writes(self):
        for case in self.CASES:
            with self.subTest(**case):
                stack = Stack(TEMPLATE, **case)
                resources = stack.resources()
                policy = statements(resources["BucketPolicy"]["Properties"]["PolicyDocument"])
                trail = stack.parameters["TrailName"]
                puts = [s for s in policy.values() if s["Effect"] == "Allow" and s["Action"] == "s3:PutObject"]
                self.assertEqual(len(puts), 2 if case.get("OrganizationId") else 1, policy)
                patterns = [r for s in puts for r in listed(s["Resource"])]
                for key in written_keys(case.get("KeyPrefix", ""), case.get("OrganizationId"), trail):
                    self.assertTrue(any(matches(p, key) for p in patterns), f"{key} is not writable by {patterns}")
                # Nothing beyond AWSLogs/<account or organization>/ under the prefix.
                root = f"{case['KeyPrefix']}/AWSLogs/" if case.get("KeyPrefix") else "AWSLogs/"
                owners = [ACCOUNT] + ([ORG] if case.get("OrganizationId") else [])
                self.assertEqual(sorted(patterns), sorted(f"${{Bucket.Arn}}/{root}{o}/*" for o in owners))
                for outside in [f"{root}999999999999/CloudTrail/x.json.gz", f"elsewhere/AWSLogs/{ACCOUNT}/x.json.gz"]:
                    self.assertFalse(any(matches(p, outside) for p in patterns), outside)

    def test_only_this_trail_may_write_and_check_the_acl(self):
        for case in self.CASES:
            with self.subTest(**case):
                stack = Stack(TEMPLATE, **case)
                policy = statements(stack.resources()["BucketPolicy"]["Properties"]["PolicyDocument"])
                trail_arn = TRAIL_ARN + stack.parameters["TrailName"]
                cloudtrail = [s for s in policy.values() if s["Effect"] == "Allow"]
                self.assertIn("AWSCloudTrailAclCheck", policy)
                self.assertEqual(policy["AWSCloudTrailAclCheck"]["Resource"], "${Bucket.Arn}")
                for statement in cloudtrail:
                    self.assertEqual(statement["Principal"], {"Service": "cloudtrail.amazonaws.com"})
                    self.assertEqual(statement["Condition"]["StringEquals"]["aws:SourceArn"], trail_arn, statement)
                    if statement["Action"] == "s3:PutObject":
                        self.assertEqual(
                            statement["Condition"]["StringEquals"]["s3:x-amz-acl"], "bucket-owner-full-control"
                        )

    def test_the_arn_in_the_policy_is_the_trails_arn(self):
        # The ARN is built with !Sub from TrailName, because !GetAtt Trail.Arn would be a cycle:
        # it must be the ARN CloudTrail gives a trail of that name in this account and Region.
        stack = Stack(TEMPLATE, TrailName="main-trail")
        trail = stack.resources()["Trail"]["Properties"]
        self.assertEqual(trail["TrailName"], "main-trail")
        policy = statements(stack.resources()["BucketPolicy"]["Properties"]["PolicyDocument"])
        arn = policy["AWSCloudTrailWrite"]["Condition"]["StringEquals"]["aws:SourceArn"]
        self.assertEqual(arn, f"arn:{PSEUDO['AWS::Partition']}:cloudtrail:{PSEUDO['AWS::Region']}:{ACCOUNT}:trail/main-trail")

    def test_tls_only_private_versioned_with_lifecycle(self):
        for case in [{}, {"ExpirationDays": "2557"}]:
            with self.subTest(**case):
                resources = Stack(TEMPLATE, **case).resources()
                deny = statements(resources["BucketPolicy"]["Properties"]["PolicyDocument"])["DenyInsecureTransport"]
                self.assertEqual((deny["Effect"], deny["Principal"], deny["Action"]), ("Deny", "*", "s3:*"))
                self.assertEqual(deny["Condition"], {"Bool": {"aws:SecureTransport": "false"}})
                self.assertEqual(sorted(deny["Resource"]), ["${Bucket.Arn}", "${Bucket.Arn}/*"])
                bucket = resources["Bucket"]["Properties"]
                self.assertEqual(set(bucket["PublicAccessBlockConfiguration"].values()), {True})
                self.assertEqual(len(bucket["PublicAccessBlockConfiguration"]), 4)
                self.assertEqual(bucket["VersioningConfiguration"], {"Status": "Enabled"})
                rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
                self.assertEqual(rules["glacier-instant-retrieval"]["Transitions"][0]["StorageClass"], "GLACIER_IR")
                self.assertIn("NoncurrentVersionExpiration", rules["expire-noncurrent-versions"])
                expiration = rules["glacier-instant-retrieval"].get("ExpirationInDays")
                self.assertEqual(expiration, case.get("ExpirationDays"), "0 keeps the files")
                self.assertEqual(TEMPLATE["Resources"]["Bucket"]["DeletionPolicy"], "Retain")


class Trail(unittest.TestCase):
    CASES = [
        {},
        {"KmsEncryption": "false"},
        {"CloudWatchLogs": "true"},
        {"CloudWatchLogs": "true", "KmsEncryption": "false"},
        {"OrganizationId": ORG, "MultiRegion": "false", "KeyPrefix": "p"},
        {"PipelineFeed": "TrailNotice", "PipelineQueueArn": "arn:aws:sqs:us-east-1:111122223333:parquetrail-Queue-X"},
        {"PipelineFeed": "S3Notification", "PipelineQueueArn": "arn:aws:sqs:us-east-1:111122223333:parquetrail-Queue-X"},
        {"PipelineFeed": "EventBridge"},
    ]

    def test_depends_on_the_policies_and_has_no_cycle(self):
        for case in self.CASES:
            with self.subTest(**case):
                stack = Stack(TEMPLATE, **case)
                resources = stack.resources()
                depends = resources["Trail"]["DependsOn"]
                self.assertIn("BucketPolicy", depends)
                self.assertIn("NoticeTopicPolicy", depends)
                for target in depends:
                    self.assertIn(target, resources, f"the trail depends on {target}, which is not created")
                self.assertIsNone(cycle(stack.dependencies()))

    def test_is_the_trail_verify_needs(self):
        for case in self.CASES:
            with self.subTest(**case):
                trail = Stack(TEMPLATE, **case).resources()["Trail"]["Properties"]
                self.assertIs(trail["IsLogging"], True)
                self.assertIs(trail["EnableLogFileValidation"], True)
                self.assertIs(trail["IncludeGlobalServiceEvents"], True)
                self.assertEqual(str(trail["IsMultiRegionTrail"]), case.get("MultiRegion", "true"))
                self.assertIs(trail["IsOrganizationTrail"], bool(case.get("OrganizationId")))
                self.assertEqual(trail["S3BucketName"], "${Bucket}")
                self.assertEqual(trail.get("S3KeyPrefix"), case.get("KeyPrefix"))
                self.assertNotIn("EventSelectors", trail, "EventSelectors and AdvancedEventSelectors exclude each other")
                kms = case.get("KmsEncryption", "true") == "true"
                self.assertEqual(trail.get("KMSKeyId"), "${Key.Arn}" if kms else None)
                self.assertEqual(trail["SnsTopicName"], "${NoticeTopic.TopicName}")
                logs = case.get("CloudWatchLogs") == "true"
                self.assertEqual("CloudWatchLogsLogGroupArn" in trail, logs)
                self.assertEqual("CloudWatchLogsRoleArn" in trail, logs, "both or neither")

    def test_cloudwatch_logs_role_delivers_only_to_its_log_group(self):
        stack = Stack(TEMPLATE, CloudWatchLogs="true", CloudWatchLogsRetentionDays="30")
        resources = stack.resources()
        self.assertEqual(resources["LogGroup"]["Properties"]["RetentionInDays"], "30")
        self.assertEqual(resources["LogGroup"]["Properties"]["KmsKeyId"], "${Key.Arn}")
        role = resources["CloudWatchLogsRole"]["Properties"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual(trust["Principal"], {"Service": "cloudtrail.amazonaws.com"})
        self.assertEqual(trust["Condition"]["StringEquals"]["aws:SourceArn"], TRAIL_ARN + "parquetrail")
        (grant,) = role["Policies"][0]["PolicyDocument"]["Statement"]
        self.assertEqual(sorted(grant["Action"]), ["logs:CreateLogStream", "logs:PutLogEvents"])
        self.assertEqual(grant["Resource"], f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:${{LogGroup}}:log-stream:*")
        # The key lets CloudWatch Logs use it only for that log group.
        key = statements(resources["Key"]["Properties"]["KeyPolicy"])
        context = key["CloudWatchLogsEncrypts"]["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
        self.assertEqual(context, f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/cloudtrail/parquetrail")
        self.assertNotIn("LogGroup", Stack(TEMPLATE).resources())

    def test_notice_topic_takes_cloudtrail_and_feeds_the_queue(self):
        queue = "arn:aws:sqs:us-east-1:111122223333:parquetrail-Queue-X"
        resources = Stack(TEMPLATE, PipelineFeed="TrailNotice", PipelineQueueArn=queue).resources()
        topic = statements(resources["NoticeTopicPolicy"]["Properties"]["PolicyDocument"])
        publish = topic["AWSCloudTrailSNSPolicy"]
        self.assertEqual(publish["Principal"], {"Service": "cloudtrail.amazonaws.com"})
        self.assertEqual(publish["Condition"]["StringEquals"]["aws:SourceArn"], TRAIL_ARN + "parquetrail")
        subscription = resources["NoticeSubscription"]["Properties"]
        self.assertEqual((subscription["Protocol"], subscription["Endpoint"]), ("sqs", queue))
        self.assertEqual(subscription["TopicArn"], "${NoticeTopic}")
        # The topic's name is fixed, so a pipeline can allow it before it exists.
        self.assertEqual(resources["NoticeTopic"]["Properties"]["TopicName"], "parquetrail-log-files")
        self.assertNotIn("NotificationConfiguration", resources["Bucket"]["Properties"], "one feed, not two")
        self.assertNotIn("NoticeSubscription", Stack(TEMPLATE).resources())

    def test_bucket_feeds_the_queue_every_file_under_awslogs(self):
        queue = "arn:aws:sqs:us-east-1:111122223333:parquetrail-Queue-X"
        for prefix in ["", "trails"]:
            with self.subTest(prefix=prefix):
                stack = Stack(TEMPLATE, PipelineFeed="S3Notification", PipelineQueueArn=queue, KeyPrefix=prefix)
                resources = stack.resources()
                (config,) = resources["Bucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
                self.assertEqual(config["Queue"], queue)
                rules = {r["Name"]: r["Value"] for r in config["Filter"]["S3Key"]["Rules"]}
                for key in written_keys(prefix, False, "parquetrail"):
                    self.assertTrue(key.startswith(rules["prefix"]) and key.endswith(rules["suffix"]), key)
                self.assertNotIn("NoticeSubscription", resources, "one feed, not two")
        bridge = Stack(TEMPLATE, PipelineFeed="EventBridge").resources()["Bucket"]["Properties"]
        self.assertEqual(bridge["NotificationConfiguration"], {"EventBridgeConfiguration": {"EventBridgeEnabled": True}})
        self.assertEqual(Stack(TEMPLATE, PipelineFeed="S3Notification").failed_rules(), ["FeedNamesItsQueue"])


class Key(unittest.TestCase):
    def test_cloudtrail_encrypts_and_readers_decrypt(self):
        for readers in [[READER], [READER, "arn:aws:iam::111122223333:role/auditor"]]:
            with self.subTest(readers=readers):
                stack = Stack(TEMPLATE, ReaderRoleArns=",".join(readers), TrailName="trail-1")
                key = stack.resources()["Key"]["Properties"]
                self.assertIs(key["EnableKeyRotation"], True)
                policy = statements(key["KeyPolicy"])
                encrypt = policy["CloudTrailEncrypts"]
                self.assertEqual(encrypt["Principal"], {"Service": "cloudtrail.amazonaws.com"})
                self.assertEqual(encrypt["Action"], "kms:GenerateDataKey*")
                self.assertEqual(encrypt["Condition"]["StringEquals"]["aws:SourceArn"], TRAIL_ARN + "trail-1")
                context = encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"]
                self.assertTrue(fnmatch.fnmatchcase(TRAIL_ARN + "trail-1", context), context)
                self.assertEqual(policy["CloudTrailDescribes"]["Action"], "kms:DescribeKey")
                decrypt = policy["ReadersDecrypt"]
                self.assertEqual(decrypt["Principal"], {"AWS": readers})
                self.assertEqual(decrypt["Action"], "kms:Decrypt")
                self.assertEqual(decrypt["Condition"]["StringEquals"]["kms:ViaService"], "s3.us-east-1.amazonaws.com")
                # Nobody outside the account and these principals is granted anything.
                for statement in policy.values():
                    principal = statement["Principal"]
                    self.assertNotEqual(principal, "*")
                    self.assertNotEqual(principal.get("AWS"), "*")

    def test_no_readers_no_reader_statement_and_no_key_without_kms(self):
        policy = statements(Stack(TEMPLATE).resources()["Key"]["Properties"]["KeyPolicy"])
        self.assertNotIn("ReadersDecrypt", policy)
        self.assertEqual(
            policy["AccountAdministers"]["Principal"], {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        )
        resources = Stack(TEMPLATE, KmsEncryption="false", ReaderRoleArns=READER).resources()
        self.assertNotIn("Key", resources)
        self.assertNotIn("KMSKeyId", resources["Trail"]["Properties"])


def selector_problems(selectors):
    """What CloudTrail would refuse in these advanced event selectors (REFERENCE §7), as text."""
    problems = []
    if not selectors:
        problems.append("no selector: the trail would fall back to every management event")
    for selector in selectors:
        fields = {}
        for field in selector["FieldSelectors"]:
            name = field["Field"]
            if name in fields:
                problems.append(f"{selector['Name']}: {name} twice")
            fields[name] = field
            operators = set(field) - {"Field"}
            if not operators:
                problems.append(f"{selector['Name']}: {name} has no operator")
            for operator in operators:
                if not field[operator] or any(not v for v in field[operator]):
                    problems.append(f"{selector['Name']}: {name} {operator} has an empty value")
        category = fields.get("eventCategory", {}).get("Equals")
        if category not in (["Management"], ["Data"]):
            problems.append(f"{selector['Name']}: eventCategory is {category}")
        if "readOnly" in fields:
            if set(fields["readOnly"]) != {"Field", "Equals"} or fields["readOnly"]["Equals"] not in (["true"], ["false"]):
                problems.append(f"{selector['Name']}: readOnly is {fields['readOnly']}")
        if category == ["Management"]:
            extra = set(fields) - {"eventCategory", "readOnly", "eventSource"}
            if extra:
                problems.append(f"{selector['Name']}: management selectors take no {sorted(extra)}")
            source = fields.get("eventSource")
            if source and (set(source) != {"Field", "NotEquals"}
                           or not set(source["NotEquals"]) <= {"kms.amazonaws.com", "rdsdata.amazonaws.com"}):
                problems.append(f"{selector['Name']}: eventSource may only exclude kms and rdsdata: {source}")
        if category == ["Data"]:
            kind = fields.get("resources.type", {}).get("Equals", [])
            if len(kind) != 1:
                problems.append(f"{selector['Name']}: a data selector needs exactly one resources.type, has {kind}")
    return problems


class Selectors(unittest.TestCase):
    def test_every_combination_is_valid_or_refused_by_a_rule(self):
        accepted = 0
        for case in selections():
            stack = Stack(TEMPLATE, **case)
            refused = stack.failed_rules()
            nothing = case["ManagementEvents"] == "None" and case["S3DataEvents"] == "None" and case["LambdaDataEvents"] == "None"
            self.assertEqual(refused == ["SomethingIsRecorded"], nothing, f"{case}: rules {refused}")
            if refused:
                continue
            accepted += 1
            selectors = stack.resources()["Trail"]["Properties"]["AdvancedEventSelectors"]
            self.assertEqual(selector_problems(selectors), [], case)
            self.assert_records_what_was_asked(case, {s["Name"]: s for s in selectors})
        self.assertGreater(accepted, 100)

    def assert_records_what_was_asked(self, case, selectors):
        def fields(name):
            return {f["Field"]: f for f in selectors[name]["FieldSelectors"]}

        read_only = {"All": None, "ReadOnly": ["true"], "WriteOnly": ["false"]}
        management = case["ManagementEvents"]
        self.assertEqual("Management events" in selectors, management != "None", case)
        if management != "None":
            got = fields("Management events")
            self.assertEqual(got.get("readOnly", {}).get("Equals"), read_only[management], case)
            excluded = [s for s, on in [("kms.amazonaws.com", case["ExcludeKmsEvents"]),
                                         ("rdsdata.amazonaws.com", case["ExcludeRdsDataEvents"])] if on == "true"]
            self.assertEqual(got.get("eventSource", {}).get("NotEquals", []), excluded, case)
        s3 = case["S3DataEvents"]
        self.assertEqual("S3 object data events" in selectors, s3 != "None", case)
        if s3 != "None":
            got = fields("S3 object data events")
            self.assertEqual(got["resources.type"]["Equals"], ["AWS::S3::Object"])
            self.assertEqual(got.get("readOnly", {}).get("Equals"), read_only[s3], case)
            prefixes = [p for p in case["S3DataEventArnPrefixes"].split(",") if p]
            if prefixes:
                self.assertEqual(got["resources.ARN"], {"Field": "resources.ARN", "StartsWith": prefixes}, case)
            else:
                # Every bucket but the trail's own, whose writes and reads would feed themselves.
                self.assertEqual(got["resources.ARN"], {"Field": "resources.ARN", "NotStartsWith": ["${Bucket.Arn}/"]})
        self.assertEqual("Lambda invoke data events" in selectors, case["LambdaDataEvents"] == "All", case)
        if case["LambdaDataEvents"] == "All":
            got = fields("Lambda invoke data events")
            self.assertEqual(got["resources.type"]["Equals"], ["AWS::Lambda::Function"])
            arns = [a for a in case["LambdaFunctionArns"].split(",") if a]
            self.assertEqual(got.get("resources.ARN", {}).get("StartsWith", []), arns, case)

    def test_the_checker_catches_what_cloudtrail_refuses(self):
        # The checker above must be able to fail: each of these is refused by CloudTrail.
        bad = [
            [],
            [{"Name": "a", "FieldSelectors": [{"Field": "readOnly", "Equals": ["true"]}]}],
            [{"Name": "a", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}],
            [{"Name": "a", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                              {"Field": "resources.type", "Equals": ["AWS::S3::Object", "AWS::Lambda::Function"]}]}],
            [{"Name": "a", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                              {"Field": "readOnly", "Equals": ["true", "false"]}]}],
            [{"Name": "a", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                              {"Field": "eventSource", "NotEquals": ["s3.amazonaws.com"]}]}],
            [{"Name": "a", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                              {"Field": "eventSource", "NotEquals": []}]}],
        ]
        for selectors in bad:
            self.assertNotEqual(selector_problems(selectors), [], selectors)

    def test_insight_selectors(self):
        cases = {
            ("None", "Management"): None,
            ("ApiCallRateInsight", "Management"): [("ApiCallRateInsight", ["Management"])],
            ("ApiErrorRateInsight", "Management"): [("ApiErrorRateInsight", ["Management"])],
            ("Both", "Management"): [("ApiCallRateInsight", ["Management"]), ("ApiErrorRateInsight", ["Management"])],
            ("Both", "Both"): [("ApiCallRateInsight", ["Management", "Data"]), ("ApiErrorRateInsight", ["Management", "Data"])],
        }
        for (types, categories), want in cases.items():
            with self.subTest(types=types, categories=categories):
                stack = Stack(TEMPLATE, InsightTypes=types, InsightEventCategories=categories, S3DataEvents="All")
                self.assertEqual(stack.failed_rules(), [])
                got = stack.resources()["Trail"]["Properties"].get("InsightSelectors")
                self.assertEqual(got and [(s["InsightType"], s["EventCategories"]) for s in got], want)

    def test_insights_need_the_events_they_analyse(self):
        refused = {
            "ManagementInsightsNeedWriteEvents": dict(InsightTypes="Both", ManagementEvents="ReadOnly"),
            "DataInsightsNeedDataEvents": dict(InsightTypes="ApiCallRateInsight", InsightEventCategories="Data"),
        }
        for rule, case in refused.items():
            with self.subTest(rule=rule):
                self.assertEqual(Stack(TEMPLATE, **case).failed_rules(), [rule])
        ok = Stack(TEMPLATE, InsightTypes="Both", ManagementEvents="WriteOnly")
        self.assertEqual(ok.failed_rules(), [])


class Parameters(unittest.TestCase):
    def test_every_parameter_is_explained(self):
        for name, spec in TEMPLATE["Parameters"].items():
            self.assertGreater(len(spec.get("Description", "")), 30, name)

    def test_defaults_are_secure(self):
        stack = Stack(TEMPLATE)
        trail = stack.resources()["Trail"]["Properties"]
        self.assertIn("KMSKeyId", trail, "encrypted with a customer key by default")
        self.assertEqual(str(trail["IsMultiRegionTrail"]), "true")
        selectors = trail["AdvancedEventSelectors"]
        self.assertEqual(
            [s["FieldSelectors"] for s in selectors], [[{"Field": "eventCategory", "Equals": ["Management"]}]],
            "by default every management event and nothing billed per data event",
        )
        self.assertNotIn("InsightSelectors", trail)

    def test_key_prefix_matches_the_layout_the_pipeline_reads(self):
        # The prefix pattern refuses slashes at either end, which would make "//" in every key.
        for bad in ["/p", "p/", "/"]:
            with self.assertRaises(ValueError):
                Stack(TEMPLATE, KeyPrefix=bad)
        outputs = Stack(TEMPLATE, KeyPrefix="a/b", OrganizationId=ORG).outputs()
        self.assertEqual(outputs["LogFilesPrefix"], f"a/b/AWSLogs/{ORG}/")
        for key in written_keys("a/b", True, "parquetrail"):
            self.assertTrue(key.startswith(outputs["LogFilesPrefix"]), key)
            self.assertRegex(key.rsplit("/", 1)[1], re.compile(r"^\d{12}_CloudTrail(-Digest|-Insight)?_[a-z0-9-]+_"))


if __name__ == "__main__":
    unittest.main()
