# Plan-time checks of the fleet, with a mocked AWS provider (no account, no network):
#   terraform init -backend=false && terraform test
# (tests/integration/test_infra_files.py runs it when the AWS provider is installed.)

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_vpc" {
    defaults = { cidr_block = "10.0.0.0/16" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

mock_provider "aws" {
  alias = "us_east_1"
}

variables {
  environment             = "prod"
  region                  = "us-east-1"
  cluster                 = "kb"
  vpc_id                  = "vpc-0123456789abcdef0"
  subnets                 = ["subnet-0123456789abcdef0"]
  image                   = "kb-mcp@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  alb_listener_arn        = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/kb/0123456789abcdef/0123456789abcdef"
  alb_security_group_id   = "sg-0123456789abcdef0"
  operator_role_arn       = "arn:aws:iam::123456789012:role/kb-mcp-prod-operator"
  db_max_connections      = 100
  db_reserved_connections = 10
}

run "a_fleet_within_the_budget_plans" {
  command = plan

  variables {
    task_count            = 2
    autoscaling_max_tasks = 4
  }

  # 4 tasks x 200 % = 8 at peak, x (10 + 1) + 10 reserved = 98 <= 100.
  assert {
    condition     = terraform_data.connection_budget.input.peak_connections == 98
    error_message = "peak connections should be 8 x 11 + 10 = 98"
  }

  assert {
    condition     = aws_appautoscaling_target.service.max_capacity == 4 && aws_appautoscaling_target.service.min_capacity == 2
    error_message = "autoscaling should run between task_count and autoscaling_max_tasks"
  }

  assert {
    condition     = contains([for e in jsondecode(aws_ecs_task_definition.server.container_definitions)[0].environment : e.name if e.value == "10"], "KB_MCP_DB_POOL_MAX_SIZE")
    error_message = "the task definition should set the pool size the budget counts"
  }
}

run "an_over_budget_fleet_is_refused_at_plan_time" {
  command = plan

  variables {
    autoscaling_max_tasks = 5
  }

  # 5 x 200 % = 10 tasks x 11 + 10 = 120 > 100.
  expect_failures = [terraform_data.connection_budget]
}

run "a_deployment_percentage_counts_in_the_budget" {
  command = plan

  variables {
    autoscaling_max_tasks      = 8
    deployment_maximum_percent = 100
  }

  # 8 x 100 % x 11 + 10 = 98: the same fleet fits without the deployment surge.
  assert {
    condition     = terraform_data.connection_budget.input.peak_connections == 98
    error_message = "peak connections should be 8 x 11 + 10 = 98"
  }
}

run "the_proxy_takes_the_budget_over" {
  command = plan

  variables {
    autoscaling_max_tasks  = 20
    enable_rds_proxy       = true
    db_instance_identifier = "kb-prod"
  }

  assert {
    condition     = !terraform_data.connection_budget.input.enforced
    error_message = "with the RDS Proxy the tasks' connections end at the proxy"
  }
}

run "a_failover_region_creates_no_secret_and_suffixes_iam_names" {
  command = plan

  variables {
    region         = "us-west-2"
    primary_region = "us-east-1"
  }

  assert {
    condition     = length(aws_secretsmanager_secret.openai) == 0 && length(aws_secretsmanager_secret_policy.protect) == 0
    error_message = "a failover region uses the primary's replicas"
  }

  assert {
    condition     = aws_iam_role.task.name == "kb-mcp-prod-us-west-2-task"
    error_message = "IAM names in a failover region carry the region"
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.secrets_manager_billing) == 0
    error_message = "the account-wide billing alarm belongs to the primary region"
  }

  assert {
    condition     = length(aws_cloudtrail.secrets) == 0 && aws_cloudwatch_event_rule.secret_tampering.name == "kb-mcp-prod-secret-tampering"
    error_message = "a failover region's tamper rules use the primary's multi-region trail"
  }
}

run "automatic_rotation_every_30_days_with_its_role_among_readers_and_writers" {
  command = plan

  variables {
    enable_postgres_rotation = true
    # Any file stands in for the package at plan time.
    rotation_package_path = "tests/fleet.tftest.hcl"
  }

  assert {
    condition     = aws_secretsmanager_secret_rotation.postgres[0].rotation_rules[0].automatically_after_days == 30
    error_message = "automatic rotation should run every 30 days"
  }

  assert {
    condition     = aws_lambda_function.rotation[0].handler == "kb_mcp.ops.rotation.lambda_handler.handler"
    error_message = "the function runs the packaged kb-mcp rotation handler"
  }

  assert {
    condition     = length(local.secret_writer_role_arns) == 1 && length(local.secret_reader_role_arns) == 2
    error_message = "besides the operator, the rotation function writes; it and the task role read"
  }
}

run "rotation_needs_its_package" {
  command = plan

  variables {
    enable_postgres_rotation = true
  }

  expect_failures = [aws_lambda_function.rotation]
}
