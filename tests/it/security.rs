//! Security properties that hold for the whole project: least privilege in the SAM template, and
//! TLS verification that no code turns off.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/check-iam.py` on a template text; (passed, output).
fn check_iam(text: &str) -> (bool, String) {
    let python = std::env::var("E2B_PYTHON")
        .unwrap_or_else(|_| root().join(".venv/bin/python").display().to_string());
    let path = std::env::temp_dir().join(format!(
        "e2b-template-{}-{}.yaml",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).expect("std::fs::write in the test set-up");
    let output = Command::new(&python)
        .arg(root().join("scripts/check-iam.py"))
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("{python} (run scripts/test.sh, which installs cfn-lint into .venv): {e}")
        });
    let _ = std::fs::remove_file(&path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!text.contains("Traceback"), "{text}");
    (output.status.success(), text)
}

#[test]
fn the_template_grants_each_function_only_named_actions_on_named_resources() {
    let template =
        std::fs::read_to_string(root().join("template.yaml")).expect("join in the test set-up");
    let (passed, output) = check_iam(&template);
    assert!(passed, "{output}");
    assert!(
        output.contains("ForwarderFunction, ProcessorFunction"),
        "{output}"
    );

    // The check catches what it is for.
    let wider = [
        (
            "Action: [sqs:SendMessage]",
            "Action: [\"sqs:*\"]",
            "wildcard or computed action",
        ),
        (
            "Resource: !GetAtt ProcessorFailureRecords.Arn",
            "Resource: \"*\"",
            "is not scoped",
        ),
        (
            "${ExportBucketName}/${ExportKeyPrefix}*",
            "*/${ExportKeyPrefix}*",
            "is not scoped",
        ),
        (
            "      Policies:\n        - PolicyName: forwarder",
            "      ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]\n      Policies:\n        - PolicyName: forwarder",
            "managed policy 'arn:aws:iam::aws:policy/AdministratorAccess'",
        ),
        // The VPC's network-interface actions on "*" only when attached, and only those.
        (
            "    Condition: AttachedToVpc\n    Properties:\n      PolicyName: vpc-network-interfaces",
            "    Properties:\n      PolicyName: vpc-network-interfaces",
            "is not scoped",
        ),
        (
            "Action: [ec2:CreateNetworkInterface,",
            "Action: [ec2:RunInstances, ec2:CreateNetworkInterface,",
            "is not scoped",
        ),
    ];
    for (from, to, problem) in wider {
        assert!(template.contains(from), "the template changed: {from}");
        let (passed, output) = check_iam(&template.replacen(from, to, 1));
        assert!(!passed && output.contains(problem), "{to}: {output}");
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_code_turns_tls_verification_off() {
    let mut files = Vec::new();
    for dir in ["src", "examples", "tests/support"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 40, "{} files", files.len());
    let forbidden = [
        "danger_accept_invalid_certs",
        "danger_accept_invalid_hostnames",
        "tls_built_in_root_certs(false)",
        "dangerous()",
        "NoCertificateVerification",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for word in forbidden {
            assert!(!text.contains(word), "{} uses {word}", file.display());
        }
    }
    // Every HTTP client is built with rustls and its web PKI roots (reqwest's `rustls` feature).
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap_or_default();
    let reqwest = manifest
        .lines()
        .find(|l| l.starts_with("reqwest ="))
        .unwrap_or_default();
    assert!(
        reqwest.contains("\"rustls\"") && reqwest.contains("default-features = false"),
        "{reqwest}"
    );
}

/// The template as CloudFormation deploys it (`scripts/sam-transform.py`: SAM's transform).
fn deployed_template() -> serde_json::Value {
    let python = std::env::var("E2B_PYTHON")
        .unwrap_or_else(|_| root().join(".venv/bin/python").display().to_string());
    let output = Command::new(&python)
        .arg(root().join("scripts/sam-transform.py"))
        .arg(root().join("template.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{python} (run scripts/test.sh, which installs it): {e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the transformed template is JSON")
}

/// VPC attachment (issue 21): both functions attached only when SubnetIds are given, their
/// roles given the network-interface permissions only then (SAM would add its managed VPC
/// policy to a generated role whenever VpcConfig is written), the endpoints only on request,
/// and the Function URL kept.
#[test]
fn the_functions_join_a_vpc_only_when_asked_and_their_roles_gain_nothing_otherwise() {
    let deployed = deployed_template();
    let resources = deployed["Resources"].as_object().expect("resources");
    let text = deployed.to_string();
    assert!(
        !text.contains("AWSLambdaVPCAccessExecutionRole"),
        "a managed VPC policy"
    );
    let roles: Vec<&String> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::IAM::Role")
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        roles,
        ["ForwarderRole", "ProcessorRole"],
        "no generated role"
    );
    for (function, role) in [
        ("ForwarderFunction", "ForwarderRole"),
        ("ProcessorFunction", "ProcessorRole"),
    ] {
        let properties = &resources[function]["Properties"];
        assert_eq!(properties["Role"]["Fn::GetAtt"][0], role);
        assert_eq!(properties["VpcConfig"]["Fn::If"][0], "AttachedToVpc");
        assert_eq!(
            properties["VpcConfig"]["Fn::If"][2],
            serde_json::json!({"Ref": "AWS::NoValue"})
        );
        assert!(resources[role]["Properties"]["ManagedPolicyArns"].is_null());
    }
    assert_eq!(resources["VpcAccess"]["Condition"], "AttachedToVpc");
    let endpoints: Vec<String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::EC2::VPCEndpoint")
        .inspect(|r| assert_eq!(r["Condition"], "CreatesVpcEndpoints"))
        .map(|r| r["Properties"]["ServiceName"]["Fn::Sub"].to_string())
        .collect();
    for service in ["s3", "dynamodb", "secretsmanager", "sqs", "kinesis-streams"] {
        assert!(
            endpoints
                .iter()
                .any(|e| e.ends_with(&format!(".{service}\""))),
            "{service}: {endpoints:?}"
        );
    }
    assert_eq!(
        deployed["Conditions"]["CreatesVpcEndpoints"]["Fn::And"][0]["Condition"],
        "AttachedToVpc"
    );
    assert!(
        resources.contains_key("ProcessorFunctionUrl"),
        "the Function URL is kept"
    );
}

/// One broker (issue 22): the forwarder reads only the secret of the broker it is given
/// (`EventMeshServiceKeySecretArn`, or `AemCredentialsSecretArn`), gets only that broker's
/// variables, and a stack with both or neither is refused by the template's rule.
#[test]
fn the_forwarder_reads_only_the_secret_of_its_one_broker() {
    let deployed = deployed_template();
    let statements = deployed["Resources"]["ForwarderRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let secret_reads: Vec<&serde_json::Value> = statements
        .iter()
        .filter(|s| s.to_string().contains("secretsmanager:GetSecretValue"))
        .collect();
    assert_eq!(secret_reads.len(), 1, "{secret_reads:?}");
    let resource = &secret_reads[0]["Resource"]["Fn::If"];
    assert_eq!(resource[0], "UsesEventMesh");
    assert_eq!(
        resource[1],
        serde_json::json!({"Ref": "EventMeshServiceKeySecretArn"})
    );
    assert!(
        resource[2].to_string().contains("AemCredentialsSecretArn"),
        "{resource}"
    );
    let variables =
        &deployed["Resources"]["ForwarderFunction"]["Properties"]["Environment"]["Variables"];
    for (name, condition) in [
        ("AEM_REST_URL", "UsesEventMesh"),
        ("AEM_CREDENTIALS_SECRET", "UsesEventMesh"),
        ("EVENT_MESH_SERVICE_KEY_SECRET", "UsesEventMesh"),
        ("EVENT_MESH_QUEUE", "HasEventMeshQueue"),
    ] {
        assert_eq!(variables[name]["Fn::If"][0], condition, "{name}");
    }
    let rule = deployed["Rules"]["OneBroker"]["Assertions"].to_string();
    assert!(
        rule.contains("EventMeshServiceKeySecretArn") && rule.contains("AemRestUrl"),
        "{rule}"
    );
}

/// Alarm management's schedule (issue 30): one rule, every minute, whose only target is the
/// processor, and a permission that lets that rule alone invoke it; the rate settings are
/// optional parameters that set nothing when empty.
#[test]
fn the_schedule_may_invoke_only_the_processor() {
    let deployed = deployed_template();
    let resources = deployed["Resources"].as_object().expect("resources");
    let schedules: Vec<(&String, &serde_json::Value)> = resources
        .iter()
        .filter(|(_, r)| {
            r["Type"] == "AWS::Events::Rule" && r["Properties"]["ScheduleExpression"].is_string()
        })
        .collect();
    assert_eq!(schedules.len(), 1, "{schedules:?}");
    let (rule, schedule) = schedules[0];
    assert_eq!(
        schedule["Properties"]["ScheduleExpression"],
        "rate(1 minute)"
    );
    let targets = schedule["Properties"]["Targets"]
        .as_array()
        .expect("targets");
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0]["Arn"],
        serde_json::json!({"Fn::GetAtt": ["ProcessorFunction", "Arn"]})
    );
    let permissions: Vec<&serde_json::Value> = resources
        .values()
        .filter(|r| {
            r["Type"] == "AWS::Lambda::Permission"
                && r["Properties"]["FunctionName"]
                    == serde_json::json!({"Ref": "ProcessorFunction"})
        })
        .collect();
    for permission in &permissions {
        let principal = &permission["Properties"]["Principal"];
        if principal == "events.amazonaws.com" {
            assert_eq!(
                permission["Properties"]["SourceArn"],
                serde_json::json!({"Fn::GetAtt": [rule, "Arn"]}),
                "EventBridge may invoke the processor only through the schedule"
            );
        }
    }
    assert!(
        permissions
            .iter()
            .any(|p| p["Properties"]["Principal"] == "events.amazonaws.com")
    );
    let variables = &resources["ProcessorFunction"]["Properties"]["Environment"]["Variables"];
    for (variable, condition) in [
        ("S4_MAX_REQUESTS_PER_SECOND", "HasS4MaxRequestsPerSecond"),
        ("PROCESSOR_ALLOWED_RATE", "HasProcessorAllowedRate"),
    ] {
        assert_eq!(variables[variable]["Fn::If"][0], condition, "{variable}");
        assert_eq!(
            variables[variable]["Fn::If"][2],
            serde_json::json!({"Ref": "AWS::NoValue"})
        );
    }
}
