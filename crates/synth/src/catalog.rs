//! The services and API calls the generator draws from, with rough real-world frequencies.
//!
//! Weights follow what busy production accounts log: S3 and Lambda/DynamoDB data events, KMS
//! and STS dominate; ConsoleLogin and organisation calls are rare. Within a service the events
//! are listed most-frequent first and drawn with a mild bias towards the front.

/// How a service names the resource in generic request bodies (`functionName`, `clusterId`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdStyle {
    /// `<noun>Name`
    Name,
    /// `<noun>Id`
    Id,
    /// `<noun>Arn`
    Arn,
    /// `<noun>Identifier` (RDS-style, with the service's odd capitalisation)
    Identifier,
}

/// One AWS service as CloudTrail names it.
#[derive(Debug)]
pub(crate) struct Service {
    /// `eventSource`, e.g. `ec2.amazonaws.com`.
    pub source: &'static str,
    /// Service namespace used in ARNs and IAM action names (`ec2`, `s3`, `states`).
    pub ns: &'static str,
    /// Relative frequency among all records.
    pub weight: u32,
    /// `apiVersion` written on this service's records, when it writes one.
    pub api_version: Option<&'static str>,
    /// Parameter naming in generic bodies.
    pub id_style: IdStyle,
    /// Index into [`EVENT_VERSIONS`] that this service mostly emits.
    pub version: u8,
    /// Event names, most frequent first.
    pub events: &'static [&'static str],
}

/// The `eventVersion` values in the mix.
pub(crate) const EVENT_VERSIONS: [&str; 4] = ["1.08", "1.09", "1.10", "1.11"];

macro_rules! svc {
    ($source:literal, $ns:literal, $w:literal, $api:expr, $style:ident, $v:literal, [$($e:literal),+ $(,)?]) => {
        Service {
            source: $source,
            ns: $ns,
            weight: $w,
            api_version: $api,
            id_style: IdStyle::$style,
            version: $v,
            events: &[$($e),+],
        }
    };
}

/// All services. Index 0 must stay S3 (the data-event heavy hitter).
pub(crate) static SERVICES: &[Service] = &[
    svc!(
        "s3.amazonaws.com",
        "s3",
        230,
        None,
        Name,
        2,
        [
            "GetObject",
            "PutObject",
            "HeadObject",
            "ListObjects",
            "DeleteObject",
            "CopyObject",
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
            "GetBucketAcl",
            "GetBucketLocation",
            "ListBuckets",
            "GetBucketPolicy",
            "GetBucketVersioning",
            "GetBucketEncryption",
            "PutBucketPolicy",
            "GetBucketPublicAccessBlock",
            "CreateBucket",
            "PutBucketTagging",
            "DeleteBucket",
        ]
    ),
    svc!(
        "ec2.amazonaws.com",
        "ec2",
        100,
        None,
        Id,
        1,
        [
            "DescribeInstances",
            "DescribeInstanceStatus",
            "DescribeSecurityGroups",
            "DescribeVpcs",
            "DescribeSubnets",
            "DescribeNetworkInterfaces",
            "DescribeVolumes",
            "DescribeImages",
            "DescribeSnapshots",
            "DescribeTags",
            "DescribeAddresses",
            "DescribeRouteTables",
            "DescribeSpotPriceHistory",
            "CreateTags",
            "RunInstances",
            "StartInstances",
            "StopInstances",
            "TerminateInstances",
            "AuthorizeSecurityGroupIngress",
            "RevokeSecurityGroupIngress",
            "CreateSecurityGroup",
            "CreateVolume",
            "AttachVolume",
            "CreateSnapshot",
            "ModifyInstanceAttribute",
            "CreateNetworkInterface",
            "DeleteVolume",
            "SharedSnapshotCopyInitiated",
        ]
    ),
    svc!(
        "kms.amazonaws.com",
        "kms",
        90,
        None,
        Id,
        0,
        [
            "Decrypt",
            "GenerateDataKey",
            "Encrypt",
            "DescribeKey",
            "ListAliases",
            "ListKeys",
            "GetKeyPolicy",
            "GetKeyRotationStatus",
            "CreateGrant",
            "RetireGrant",
            "ReEncrypt",
            "RotateKey",
            "CreateKey",
            "ScheduleKeyDeletion",
        ]
    ),
    svc!(
        "sts.amazonaws.com",
        "sts",
        80,
        None,
        Name,
        0,
        [
            "AssumeRole",
            "GetCallerIdentity",
            "AssumeRoleWithWebIdentity",
            "GetSessionToken",
            "AssumeRoleWithSAML",
            "GetFederationToken",
            "DecodeAuthorizationMessage",
            "AssumeRoot",
        ]
    ),
    svc!(
        "logs.amazonaws.com",
        "logs",
        50,
        None,
        Name,
        1,
        [
            "CreateLogStream",
            "DescribeLogGroups",
            "DescribeLogStreams",
            "FilterLogEvents",
            "GetLogEvents",
            "StartQuery",
            "GetQueryResults",
            "CreateLogGroup",
            "PutRetentionPolicy",
            "PutSubscriptionFilter",
            "DeleteLogGroup",
            "ListTagsForResource",
        ]
    ),
    svc!(
        "lambda.amazonaws.com",
        "lambda",
        50,
        None,
        Name,
        2,
        [
            "Invoke",
            "GetFunction",
            "ListFunctions20150331",
            "GetFunctionConfiguration",
            "UpdateFunctionCode20150331v2",
            "UpdateFunctionConfiguration20150331v2",
            "ListEventSourceMappings20150331",
            "CreateFunction20150331",
            "AddPermission20150331v2",
            "PublishVersion20150331",
            "GetPolicy20150331v2",
            "DeleteFunction20150331",
        ]
    ),
    svc!(
        "dynamodb.amazonaws.com",
        "dynamodb",
        50,
        Some("2012-08-10"),
        Name,
        2,
        [
            "GetItem",
            "Query",
            "PutItem",
            "UpdateItem",
            "BatchGetItem",
            "BatchWriteItem",
            "DeleteItem",
            "Scan",
            "DescribeTable",
            "ListTables",
            "DescribeContinuousBackups",
            "DescribeTimeToLive",
            "UpdateTable",
            "CreateTable",
            "DeleteTable",
        ]
    ),
    svc!(
        "iam.amazonaws.com",
        "iam",
        40,
        None,
        Name,
        0,
        [
            "GetRole",
            "ListRoles",
            "GetPolicy",
            "GetPolicyVersion",
            "ListAttachedRolePolicies",
            "ListRolePolicies",
            "GetUser",
            "ListUsers",
            "ListPolicies",
            "ListAccessKeys",
            "GetAccountAuthorizationDetails",
            "GenerateCredentialReport",
            "GetCredentialReport",
            "SimulatePrincipalPolicy",
            "CreateRole",
            "AttachRolePolicy",
            "PutRolePolicy",
            "DetachRolePolicy",
            "CreatePolicy",
            "CreatePolicyVersion",
            "CreateUser",
            "CreateAccessKey",
            "UpdateAccessKey",
            "DeleteAccessKey",
            "AttachUserPolicy",
            "AddUserToGroup",
            "UpdateAssumeRolePolicy",
            "TagRole",
            "CreateServiceLinkedRole",
            "DeleteRole",
            "PassRole",
        ]
    ),
    svc!(
        "monitoring.amazonaws.com",
        "cloudwatch",
        30,
        None,
        Name,
        0,
        [
            "GetMetricData",
            "DescribeAlarms",
            "ListMetrics",
            "GetMetricStatistics",
            "PutMetricData",
            "PutMetricAlarm",
            "DescribeAlarmHistory",
            "DeleteAlarms",
            "PutDashboard",
        ]
    ),
    svc!(
        "sqs.amazonaws.com",
        "sqs",
        30,
        Some("2012-11-05"),
        Name,
        2,
        [
            "ReceiveMessage",
            "SendMessage",
            "DeleteMessage",
            "GetQueueAttributes",
            "GetQueueUrl",
            "ChangeMessageVisibility",
            "SendMessageBatch",
            "ListQueues",
            "SetQueueAttributes",
            "CreateQueue",
            "PurgeQueue",
        ]
    ),
    svc!(
        "ssm.amazonaws.com",
        "ssm",
        25,
        None,
        Name,
        1,
        [
            "GetParameter",
            "GetParameters",
            "GetParametersByPath",
            "UpdateInstanceInformation",
            "DescribeInstanceInformation",
            "ListCommands",
            "SendCommand",
            "PutParameter",
            "StartSession",
            "GetCommandInvocation",
            "DescribeParameters",
            "DeleteParameter",
        ]
    ),
    svc!(
        "secretsmanager.amazonaws.com",
        "secretsmanager",
        20,
        None,
        Id,
        0,
        [
            "GetSecretValue",
            "DescribeSecret",
            "ListSecrets",
            "PutSecretValue",
            "RotateSecret",
            "CreateSecret",
            "UpdateSecret",
            "GetResourcePolicy",
            "DeleteSecret",
        ]
    ),
    svc!(
        "ecr.amazonaws.com",
        "ecr",
        20,
        None,
        Name,
        1,
        [
            "GetAuthorizationToken",
            "BatchGetImage",
            "GetDownloadUrlForLayer",
            "BatchCheckLayerAvailability",
            "DescribeImages",
            "DescribeRepositories",
            "PutImage",
            "InitiateLayerUpload",
            "CompleteLayerUpload",
            "CreateRepository",
            "PutLifecyclePolicy",
        ]
    ),
    svc!(
        "ecs.amazonaws.com",
        "ecs",
        15,
        None,
        Arn,
        1,
        [
            "DescribeServices",
            "DescribeTasks",
            "ListTasks",
            "DescribeTaskDefinition",
            "SubmitTaskStateChange",
            "SubmitContainerStateChange",
            "UpdateService",
            "RegisterTaskDefinition",
            "RunTask",
            "StopTask",
            "ListClusters",
            "CreateService",
        ]
    ),
    svc!(
        "sns.amazonaws.com",
        "sns",
        15,
        None,
        Arn,
        2,
        [
            "Publish",
            "ListTopics",
            "GetTopicAttributes",
            "ListSubscriptionsByTopic",
            "Subscribe",
            "CreateTopic",
            "SetTopicAttributes",
            "DeleteTopic",
            "Unsubscribe",
        ]
    ),
    svc!(
        "cloudformation.amazonaws.com",
        "cloudformation",
        15,
        None,
        Name,
        0,
        [
            "DescribeStacks",
            "DescribeStackEvents",
            "ListStacks",
            "DescribeStackResources",
            "GetTemplate",
            "GetTemplateSummary",
            "ListStackResources",
            "CreateChangeSet",
            "DescribeChangeSet",
            "ExecuteChangeSet",
            "UpdateStack",
            "CreateStack",
            "DeleteStack",
            "ValidateTemplate",
        ]
    ),
    svc!(
        "eks.amazonaws.com",
        "eks",
        10,
        None,
        Name,
        2,
        [
            "DescribeCluster",
            "ListClusters",
            "ListNodegroups",
            "DescribeNodegroup",
            "ListAddons",
            "DescribeAddon",
            "CreateNodegroup",
            "UpdateNodegroupConfig",
            "AssociateAccessPolicy",
            "CreateAccessEntry",
        ]
    ),
    svc!(
        "elasticloadbalancing.amazonaws.com",
        "elasticloadbalancing",
        10,
        Some("2015-12-01"),
        Arn,
        0,
        [
            "DescribeLoadBalancers",
            "DescribeTargetHealth",
            "DescribeTargetGroups",
            "DescribeListeners",
            "RegisterTargets",
            "DeregisterTargets",
            "DescribeRules",
            "ModifyTargetGroupAttributes",
            "CreateLoadBalancer",
            "CreateTargetGroup",
        ]
    ),
    svc!(
        "autoscaling.amazonaws.com",
        "autoscaling",
        10,
        None,
        Name,
        0,
        [
            "DescribeAutoScalingGroups",
            "DescribeScalingActivities",
            "DescribeLaunchConfigurations",
            "SetDesiredCapacity",
            "UpdateAutoScalingGroup",
            "PutScalingPolicy",
            "CompleteLifecycleAction",
            "DescribePolicies",
            "CreateAutoScalingGroup",
        ]
    ),
    svc!(
        "rds.amazonaws.com",
        "rds",
        10,
        Some("2014-10-31"),
        Identifier,
        1,
        [
            "DescribeDBInstances",
            "DescribeDBClusters",
            "DescribeDBSnapshots",
            "DescribeEvents",
            "DescribeDBParameterGroups",
            "ListTagsForResource",
            "CreateDBSnapshot",
            "ModifyDBInstance",
            "RebootDBInstance",
            "CreateDBInstance",
            "DeleteDBSnapshot",
            "StartDBCluster",
            "StopDBCluster",
        ]
    ),
    svc!(
        "cloudtrail.amazonaws.com",
        "cloudtrail",
        8,
        None,
        Name,
        3,
        [
            "LookupEvents",
            "DescribeTrails",
            "GetTrailStatus",
            "GetEventSelectors",
            "ListTrails",
            "GetInsightSelectors",
            "PutEventSelectors",
            "StartLogging",
            "StopLogging",
            "CreateTrail",
            "UpdateTrail",
        ]
    ),
    svc!(
        "signin.amazonaws.com",
        "signin",
        8,
        None,
        Name,
        0,
        ["ConsoleLogin", "CheckMfa", "SwitchRole", "ExitRole", "GetSigninToken",]
    ),
    svc!(
        "sso.amazonaws.com",
        "sso",
        8,
        None,
        Name,
        2,
        [
            "GetRoleCredentials",
            "ListAccountRoles",
            "ListAccounts",
            "Federate",
            "Authenticate",
            "ListApplications",
            "ListProfilesForApplication",
            "Logout",
        ]
    ),
    svc!(
        "events.amazonaws.com",
        "events",
        8,
        None,
        Name,
        1,
        [
            "PutEvents",
            "DescribeRule",
            "ListRules",
            "ListTargetsByRule",
            "PutRule",
            "PutTargets",
            "RemoveTargets",
            "DeleteRule",
            "EnableRule",
            "DisableRule",
        ]
    ),
    svc!(
        "glue.amazonaws.com",
        "glue",
        8,
        None,
        Name,
        1,
        [
            "GetTable",
            "GetPartitions",
            "GetDatabase",
            "GetTables",
            "BatchCreatePartition",
            "GetCrawler",
            "StartCrawler",
            "GetJobRun",
            "StartJobRun",
            "CreateTable",
            "UpdateTable",
            "BatchGetPartition",
        ]
    ),
    svc!(
        "athena.amazonaws.com",
        "athena",
        8,
        None,
        Id,
        1,
        [
            "GetQueryExecution",
            "StartQueryExecution",
            "GetQueryResults",
            "GetWorkGroup",
            "ListWorkGroups",
            "GetTableMetadata",
            "ListDataCatalogs",
            "ListDatabases",
            "StopQueryExecution",
            "CreateWorkGroup",
        ]
    ),
    svc!(
        "kinesis.amazonaws.com",
        "kinesis",
        8,
        None,
        Name,
        2,
        [
            "PutRecords",
            "GetRecords",
            "GetShardIterator",
            "PutRecord",
            "DescribeStream",
            "ListShards",
            "DescribeStreamSummary",
            "CreateStream",
            "IncreaseStreamRetentionPeriod",
        ]
    ),
    svc!(
        "config.amazonaws.com",
        "config",
        10,
        None,
        Name,
        0,
        [
            "PutEvaluations",
            "DescribeConfigRules",
            "DescribeConfigurationRecorders",
            "DescribeComplianceByConfigRule",
            "GetComplianceDetailsByConfigRule",
            "PutConfigRule",
            "StartConfigRulesEvaluation",
            "DescribeDeliveryChannels",
            "PutConfigurationRecorder",
            "DeleteConfigRule",
        ]
    ),
    svc!(
        "states.amazonaws.com",
        "states",
        5,
        None,
        Arn,
        1,
        [
            "StartExecution",
            "DescribeExecution",
            "GetExecutionHistory",
            "ListExecutions",
            "DescribeStateMachine",
            "SendTaskSuccess",
            "SendTaskFailure",
            "UpdateStateMachine",
            "CreateStateMachine",
        ]
    ),
    svc!(
        "guardduty.amazonaws.com",
        "guardduty",
        5,
        None,
        Id,
        0,
        [
            "ListDetectors",
            "GetDetector",
            "ListFindings",
            "GetFindings",
            "GetFindingsStatistics",
            "CreateSampleFindings",
            "UpdateDetector",
            "ArchiveFindings",
            "CreateFilter",
        ]
    ),
    svc!(
        "securityhub.amazonaws.com",
        "securityhub",
        5,
        None,
        Arn,
        1,
        [
            "BatchImportFindings",
            "GetFindings",
            "DescribeHub",
            "GetEnabledStandards",
            "BatchUpdateFindings",
            "DescribeStandardsControls",
            "UpdateStandardsControl",
            "EnableSecurityHub",
        ]
    ),
    svc!(
        "organizations.amazonaws.com",
        "organizations",
        5,
        None,
        Id,
        0,
        [
            "DescribeOrganization",
            "ListAccounts",
            "DescribeAccount",
            "ListRoots",
            "ListOrganizationalUnitsForParent",
            "ListPoliciesForTarget",
            "ListParents",
            "DescribePolicy",
            "AttachPolicy",
            "CreateAccount",
            "MoveAccount",
        ]
    ),
    svc!(
        "health.amazonaws.com",
        "health",
        5,
        None,
        Arn,
        0,
        ["DescribeEventAggregates", "DescribeEvents", "DescribeEventDetails", "DescribeAffectedEntities",]
    ),
    svc!(
        "route53.amazonaws.com",
        "route53",
        5,
        None,
        Id,
        0,
        [
            "ListHostedZones",
            "ListResourceRecordSets",
            "GetHostedZone",
            "ChangeResourceRecordSets",
            "GetChange",
            "ListHealthChecks",
            "CreateHostedZone",
        ]
    ),
    svc!(
        "apigateway.amazonaws.com",
        "apigateway",
        5,
        None,
        Id,
        0,
        [
            "GetRestApis",
            "GetStages",
            "GetResources",
            "GetDeployments",
            "CreateDeployment",
            "UpdateStage",
            "GetApiKeys",
            "CreateRestApi",
            "PutIntegration",
        ]
    ),
    svc!(
        "elasticache.amazonaws.com",
        "elasticache",
        4,
        Some("2015-02-02"),
        Id,
        0,
        [
            "DescribeCacheClusters",
            "DescribeReplicationGroups",
            "DescribeEvents",
            "ModifyReplicationGroup",
            "CreateSnapshot",
            "ListTagsForResource",
        ]
    ),
    svc!(
        "firehose.amazonaws.com",
        "firehose",
        4,
        None,
        Name,
        1,
        [
            "DescribeDeliveryStream",
            "ListDeliveryStreams",
            "PutRecordBatch",
            "UpdateDestination",
            "CreateDeliveryStream",
            "StartDeliveryStreamEncryption",
        ]
    ),
    svc!(
        "tagging.amazonaws.com",
        "tag",
        3,
        None,
        Arn,
        0,
        ["GetResources", "GetTagKeys", "GetTagValues", "TagResources", "UntagResources",]
    ),
    svc!(
        "acm.amazonaws.com",
        "acm",
        3,
        None,
        Arn,
        0,
        [
            "ListCertificates",
            "DescribeCertificate",
            "GetCertificate",
            "RequestCertificate",
            "DeleteCertificate",
            "RenewCertificate",
        ]
    ),
    svc!(
        "access-analyzer.amazonaws.com",
        "access-analyzer",
        3,
        None,
        Arn,
        1,
        ["ListAnalyzers", "ListFindings", "ValidatePolicy", "GetFinding", "CreateAnalyzer", "StartResourceScan",]
    ),
    svc!(
        "backup.amazonaws.com",
        "backup",
        3,
        None,
        Id,
        1,
        [
            "ListBackupJobs",
            "DescribeBackupVault",
            "ListRecoveryPointsByBackupVault",
            "StartBackupJob",
            "BackupJobCompleted",
            "CreateBackupPlan",
            "GetBackupPlan",
        ]
    ),
    svc!(
        "identitystore.amazonaws.com",
        "identitystore",
        3,
        None,
        Id,
        2,
        [
            "ListUsers",
            "DescribeUser",
            "ListGroups",
            "ListGroupMemberships",
            "DescribeGroup",
            "CreateGroupMembership",
            "IsMemberInGroups",
        ]
    ),
    svc!(
        "codebuild.amazonaws.com",
        "codebuild",
        3,
        None,
        Name,
        1,
        ["BatchGetBuilds", "StartBuild", "BatchGetProjects", "ListBuildsForProject", "UpdateProject", "CreateProject",]
    ),
    svc!(
        "codepipeline.amazonaws.com",
        "codepipeline",
        3,
        None,
        Name,
        1,
        [
            "GetPipelineState",
            "GetPipelineExecution",
            "ListPipelineExecutions",
            "StartPipelineExecution",
            "PutJobSuccessResult",
            "UpdatePipeline",
        ]
    ),
    svc!(
        "elasticfilesystem.amazonaws.com",
        "elasticfilesystem",
        3,
        None,
        Id,
        0,
        [
            "DescribeFileSystems",
            "DescribeMountTargets",
            "DescribeAccessPoints",
            "CreateAccessPoint",
            "PutLifecycleConfiguration",
            "NewClientConnection",
        ]
    ),
    svc!(
        "sagemaker.amazonaws.com",
        "sagemaker",
        3,
        None,
        Name,
        2,
        [
            "DescribeEndpoint",
            "ListEndpoints",
            "DescribeTrainingJob",
            "CreateTrainingJob",
            "InvokeEndpoint",
            "ListModels",
            "CreateModel",
            "DeleteEndpoint",
        ]
    ),
    svc!(
        "bedrock.amazonaws.com",
        "bedrock",
        3,
        None,
        Id,
        3,
        [
            "InvokeModel",
            "Converse",
            "InvokeModelWithResponseStream",
            "ListFoundationModels",
            "GetFoundationModel",
            "ConverseStream",
            "CreateGuardrail",
        ]
    ),
    svc!(
        "cognito-idp.amazonaws.com",
        "cognito-idp",
        3,
        None,
        Id,
        2,
        [
            "InitiateAuth",
            "RespondToAuthChallenge",
            "AdminGetUser",
            "ListUsers",
            "AdminCreateUser",
            "DescribeUserPool",
            "UpdateUserPool",
        ]
    ),
    svc!(
        "redshift.amazonaws.com",
        "redshift",
        2,
        Some("2012-12-01"),
        Identifier,
        0,
        [
            "DescribeClusters",
            "DescribeClusterSnapshots",
            "GetClusterCredentials",
            "ModifyCluster",
            "CreateClusterSnapshot",
            "PauseCluster",
            "ResumeCluster",
        ]
    ),
    svc!(
        "ce.amazonaws.com",
        "ce",
        2,
        None,
        Arn,
        1,
        [
            "GetCostAndUsage",
            "GetCostForecast",
            "GetDimensionValues",
            "GetRightsizingRecommendation",
            "GetSavingsPlansCoverage",
        ]
    ),
    svc!(
        "servicequotas.amazonaws.com",
        "servicequotas",
        2,
        None,
        Arn,
        1,
        [
            "GetServiceQuota",
            "ListServiceQuotas",
            "GetAWSDefaultServiceQuota",
            "RequestServiceQuotaIncrease",
            "ListRequestedServiceQuotaChangeHistory",
        ]
    ),
    svc!(
        "wafv2.amazonaws.com",
        "wafv2",
        2,
        None,
        Arn,
        0,
        [
            "GetWebACL",
            "ListWebACLs",
            "GetWebACLForResource",
            "UpdateWebACL",
            "ListIPSets",
            "UpdateIPSet",
            "CreateRuleGroup",
        ]
    ),
    svc!(
        "cloudfront.amazonaws.com",
        "cloudfront",
        3,
        Some("2020_05_31"),
        Id,
        0,
        [
            "ListDistributions",
            "GetDistribution",
            "GetDistributionConfig",
            "CreateInvalidation",
            "UpdateDistribution",
            "ListCachePolicies",
            "CreateDistribution",
        ]
    ),
    svc!(
        "xray.amazonaws.com",
        "xray",
        3,
        None,
        Name,
        1,
        [
            "PutTraceSegments",
            "GetSamplingRules",
            "GetSamplingTargets",
            "PutTelemetryRecords",
            "GetServiceGraph",
            "GetTraceSummaries",
            "BatchGetTraces",
        ]
    ),
    svc!(
        "trustedadvisor.amazonaws.com",
        "trustedadvisor",
        2,
        None,
        Id,
        0,
        ["DescribeChecks", "DescribeCheckSummaries", "DescribeCheckItems", "RefreshCheck", "GenerateReport",]
    ),
    svc!(
        "ram.amazonaws.com",
        "ram",
        1,
        None,
        Arn,
        1,
        [
            "GetResourceShares",
            "ListResources",
            "GetResourceShareAssociations",
            "CreateResourceShare",
            "AssociateResourceShare",
            "AcceptResourceShareInvitation",
        ]
    ),
    svc!(
        "support.amazonaws.com",
        "support",
        1,
        None,
        Id,
        0,
        [
            "DescribeCases",
            "DescribeServices",
            "DescribeSeverityLevels",
            "CreateCase",
            "AddCommunicationToCase",
            "ResolveCase",
        ]
    ),
    svc!(
        "resource-explorer-2.amazonaws.com",
        "resource-explorer-2",
        1,
        None,
        Arn,
        3,
        ["Search", "ListIndexes", "GetView", "ListViews", "CreateIndex", "CreateView",]
    ),
];

/// Prefixes of API names that only read; these calls log `readOnly: true` and a null
/// `responseElements`.
const READ_PREFIXES: &[&str] = &[
    "Describe",
    "List",
    "Get",
    "Head",
    "Lookup",
    "Search",
    "Query",
    "Scan",
    "BatchGet",
    "BatchCheck",
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "ReEncrypt",
    "Filter",
    "Check",
    "Validate",
    "Simulate",
    "Is",
    "Decode",
    "Receive",
    "Invoke",
    "Converse",
    "Download",
    "Authenticate",
    "Federate",
];

/// Whether `name` is a read-only call.
pub(crate) fn is_read_only(name: &str) -> bool {
    match name {
        // Writes that happen to start like reads.
        "Invoke" | "InvokeEndpoint" | "ReceiveMessage" | "GetSigninToken" | "CheckMfa" | "GenerateCredentialReport" => {
            false
        }
        "AssumeRole"
        | "AssumeRoleWithWebIdentity"
        | "AssumeRoleWithSAML"
        | "AssumeRoot"
        | "GetCallerIdentity"
        | "GetSessionToken"
        | "GetFederationToken"
        | "GetRoleCredentials" => true,
        _ => READ_PREFIXES.iter().any(|p| name.starts_with(p)),
    }
}

/// Whether `name` on `source` is a data event (logged with `managementEvent: false`).
pub(crate) fn is_data_event(source: &str, name: &str) -> bool {
    match source {
        "s3.amazonaws.com" => matches!(
            name,
            "GetObject"
                | "PutObject"
                | "HeadObject"
                | "ListObjects"
                | "DeleteObject"
                | "CopyObject"
                | "CreateMultipartUpload"
                | "UploadPart"
                | "CompleteMultipartUpload"
        ),
        "lambda.amazonaws.com" => name == "Invoke",
        "dynamodb.amazonaws.com" => matches!(
            name,
            "GetItem" | "Query" | "PutItem" | "UpdateItem" | "BatchGetItem" | "BatchWriteItem" | "DeleteItem" | "Scan"
        ),
        "sqs.amazonaws.com" => matches!(
            name,
            "ReceiveMessage" | "SendMessage" | "DeleteMessage" | "ChangeMessageVisibility" | "SendMessageBatch"
        ),
        "sns.amazonaws.com" => name == "Publish",
        "kinesis.amazonaws.com" => matches!(name, "PutRecords" | "GetRecords" | "PutRecord"),
        "secretsmanager.amazonaws.com" => false,
        "sagemaker.amazonaws.com" => name == "InvokeEndpoint",
        "bedrock.amazonaws.com" => false,
        _ => false,
    }
}

/// Whether a call is logged as an `AwsServiceEvent` (the service acting on its own).
pub(crate) fn is_service_event(name: &str) -> bool {
    matches!(name, "RotateKey" | "BackupJobCompleted" | "SharedSnapshotCopyInitiated")
}

/// Total weight of all services.
pub(crate) fn total_weight() -> u32 {
    SERVICES.iter().map(|s| s.weight).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn catalog_is_broad_enough() {
        assert!(SERVICES.len() >= 50, "{} services", SERVICES.len());
        let names: BTreeSet<&str> = SERVICES.iter().flat_map(|s| s.events.iter().copied()).collect();
        assert!(names.len() >= 500, "{} names", names.len());
        assert_eq!(SERVICES[0].source, "s3.amazonaws.com");
        let sources: BTreeSet<&str> = SERVICES.iter().map(|s| s.source).collect();
        assert_eq!(sources.len(), SERVICES.len(), "duplicate service");
    }

    #[test]
    fn read_only_classification() {
        for (n, ro) in [
            ("DescribeInstances", true),
            ("GetObject", true),
            ("PutObject", false),
            ("Invoke", false),
            ("InvokeModel", true),
            ("ReceiveMessage", false),
            ("Decrypt", true),
            ("AssumeRole", true),
            ("CreateRole", false),
            ("GetSigninToken", false),
            ("ConsoleLogin", false),
        ] {
            assert_eq!(is_read_only(n), ro, "{n}");
        }
    }
}
