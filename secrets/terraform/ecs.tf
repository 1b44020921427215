# The server on Fargate: var.task_count tasks in var.subnets behind a target group of the
# existing ALB. The task definition here and ../ecs/task-definition.json describe the same
# container (that file is the stand-alone version for `aws ecs register-task-definition`).

resource "aws_cloudwatch_log_group" "service" {
  # The EMF metrics (namespace KbMcp) are extracted from this group at ingestion; the
  # scheduled age check writes here too.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
}

locals {
  serve_command = concat(
    ["kb-mcp", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", tostring(local.container_port)],
    # Without a token secret the server only runs behind the private ALB, which the
    # security group below makes the tasks' only source of traffic.
    var.enable_auth_token ? [] : ["--allow-unauthenticated"],
  )

  # Names and settings only: the server fetches every secret value itself, at run time,
  # with the task role. No `secrets` block, no value in the task definition.
  container_environment = concat(
    [
      { name = "KB_MCP_ENV", value = local.kb_mcp_env },
      { name = "AWS_REGION", value = var.region },
      { name = "SECRETS_CACHE_TTL_SECONDS", value = tostring(var.cache_ttl_seconds) },
      { name = "KB_MCP_DRAIN_TIMEOUT_S", value = tostring(var.drain_timeout_s) },
      { name = "KB_MCP_SECRETS_REPLICA_REGIONS", value = join(",", var.replica_regions) },
      { name = "KB_MCP_DB_POOL_MAX_SIZE", value = tostring(var.db_pool_max_size) },
      { name = "PYTHONDONTWRITEBYTECODE", value = "1" },
    ],
    var.enable_auth_token ? [{ name = "KB_MCP_AUTH_TOKEN_SECRET", value = local.secret_names.auth_token }] : [],
    local.db_host_override == null ? [] : [{ name = "KB_MCP_DB_HOST_OVERRIDE", value = local.db_host_override }],
  )

  healthz_probe = "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${local.container_port}/healthz', timeout=3).status == 200 else 1)"
}

resource "aws_ecs_task_definition" "server" {
  family                   = local.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The root filesystem is read-only; /tmp is the one writable place (Fargate has no
  # tmpfs, a bind-mount volume is backed by the task's ephemeral storage).
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = local.container_name
      image                  = var.image
      essential              = true
      command                = local.serve_command
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      # 120 s is the Fargate maximum; the server drains within drain_timeout_s after SIGTERM.
      stopTimeout = 120
      portMappings = [
        { containerPort = local.container_port, protocol = "tcp", name = "http" }
      ]
      environment = local.container_environment
      mountPoints = [
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }
      ]
      linuxParameters = {
        initProcessEnabled = true
        capabilities       = { drop = ["ALL"] }
      }
      healthCheck = {
        command     = ["CMD", "python", "-c", local.healthz_probe]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.service.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "kb-mcp"
          mode                  = "non-blocking"
          max-buffer-size       = "25m"
        }
      }
    }
  ])
}

resource "aws_lb_target_group" "server" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the internal ALB (its listener is var.alb_listener_arn); the hop to the task stays in the VPC's private subnets, from the ALB's security group only, and the task serves no TLS
  name        = local.name
  port        = local.container_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  # The ALB stops sending new requests to a deregistering task, then waits this long
  # before ECS sends SIGTERM; it exceeds drain_timeout_s (validated in variables.tf).
  deregistration_delay = var.deregistration_delay_s

  health_check {
    path                = "/readyz"
    matcher             = "200"
    protocol            = "HTTP"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener_rule" "mcp" {
  listener_arn = var.alb_listener_arn
  priority     = var.listener_rule_priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.server.arn
  }

  condition {
    path_pattern {
      values = ["/mcp", "/mcp/*"]
    }
  }
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "kb-mcp ${var.environment} tasks: HTTP from the ALB only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "MCP over HTTP from the load balancer"
  referenced_security_group_id = var.alb_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.tasks.id
  description       = "Secrets Manager, OpenAI, ECR and CloudWatch Logs over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "postgres" {
  security_group_id = aws_security_group.tasks.id
  description       = "PostgreSQL inside the VPC"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_ecs_service" "server" {
  name            = local.name
  cluster         = var.cluster
  task_definition = aws_ecs_task_definition.server.arn
  desired_count   = var.task_count
  launch_type     = "FARGATE"

  # Replace tasks one batch at a time without dropping below the desired count; roll
  # back a deployment whose tasks never turn healthy. The maximum percentage counts in the
  # connection budget (fleet.tf).
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = var.deployment_maximum_percent
  health_check_grace_period_seconds  = 60

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnets
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.server.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  propagate_tags = "SERVICE"

  lifecycle {
    # Application Auto Scaling owns the running count between task_count and
    # autoscaling_max_tasks (fleet.tf).
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener_rule.mcp, aws_iam_role_policy.task_secrets]
}
