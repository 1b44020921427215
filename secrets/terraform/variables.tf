variable "environment" {
  description = "Deployment: dev, staging or prod. Names the secrets kb-mcp/<environment>/..."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "region" {
  description = "AWS region of the secrets, the service and its alarms (standard aws partition)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]{1,2}$", var.region)) && !startswith(var.region, "cn-") && !startswith(var.region, "us-gov-")
    error_message = "region must be a region of the standard aws partition, like us-east-1."
  }
}

variable "cluster" {
  description = "Name or ARN of the existing ECS cluster the service runs in."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the subnets and the load balancer."
  type        = string
}

variable "subnets" {
  description = "Private subnets for the tasks (they need a route to Secrets Manager, OpenAI, ECR and CloudWatch Logs: NAT or VPC endpoints)."
  type        = list(string)

  validation {
    condition     = length(var.subnets) > 0
    error_message = "subnets must name at least one subnet."
  }
}

variable "task_count" {
  description = "Tasks the service starts with and never scales below (Application Auto Scaling's min_capacity)."
  type        = number
  default     = 2

  validation {
    condition     = var.task_count >= 0 && floor(var.task_count) == var.task_count
    error_message = "task_count must be a whole number >= 0."
  }
}

variable "image" {
  description = "Container image of kb-mcp, ideally pinned by digest (repo@sha256:...)."
  type        = string

  validation {
    condition     = length(trimspace(var.image)) > 0
    error_message = "image must not be empty."
  }
}

variable "ecr_repository_arns" {
  description = "ECR repositories the execution role may pull from; empty when the image is in a public registry."
  type        = list(string)
  default     = []
}

variable "alb_listener_arn" {
  description = "Listener of the existing (internal) ALB that forwards /mcp to the service."
  type        = string
}

variable "alb_security_group_id" {
  description = "Security group of that ALB; the only source allowed to reach the tasks."
  type        = string
}

variable "listener_rule_priority" {
  description = "Priority of the listener rule that forwards /mcp and /mcp/* to the target group."
  type        = number
  default     = 100
}

variable "alert_email" {
  description = "Optional e-mail address subscribed to the alert topics (confirm the subscription mail)."
  type        = string
  default     = null
}

variable "cache_ttl_seconds" {
  description = "SECRETS_CACHE_TTL_SECONDS: how often each task re-reads each secret (see ../COST.md)."
  type        = number
  default     = 300

  validation {
    condition     = var.cache_ttl_seconds >= 10 && var.cache_ttl_seconds <= 86400
    error_message = "cache_ttl_seconds must be between 10 and 86400."
  }
}

variable "drain_timeout_s" {
  description = "KB_MCP_DRAIN_TIMEOUT_S: how long a stopping task lets in-flight requests finish."
  type        = number
  default     = 30

  validation {
    # The container's stopTimeout is 120 s (the Fargate maximum); keep room to close pools.
    condition     = var.drain_timeout_s > 0 && var.drain_timeout_s <= 100
    error_message = "drain_timeout_s must be between 1 and 100 (stopTimeout is 120)."
  }
}

variable "deregistration_delay_s" {
  description = "ALB deregistration delay; longer than drain_timeout_s so the ALB stops routing before the task drains."
  type        = number
  default     = 45

  validation {
    condition     = var.deregistration_delay_s > var.drain_timeout_s && var.deregistration_delay_s <= 3600
    error_message = "deregistration_delay_s must exceed drain_timeout_s (and be at most 3600)."
  }
}

variable "enable_auth_token" {
  description = "Create kb-mcp/<environment>/mcp-auth-token and require it as the HTTP bearer token; without it the server runs --allow-unauthenticated behind the private ALB."
  type        = bool
  default     = false
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored with restore-secret (7 to 30; an immediate delete, 0, is not offered: it is what deletion protection prevents)."
  type        = number
  default     = 30

  validation {
    condition     = var.recovery_window_days >= 7 && var.recovery_window_days <= 30
    error_message = "recovery_window_days must be between 7 and 30."
  }
}

variable "replica_regions" {
  description = "Regions that hold read replicas of the secrets, in the order the server fails over to them (KB_MCP_SECRETS_REPLICA_REGIONS); the task role may read them there."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.replica_regions : can(regex("^[a-z]{2}-[a-z]+-[0-9]{1,2}$", r)) && !startswith(r, "cn-") && !startswith(r, "us-gov-")])
    error_message = "replica_regions must be regions of the standard aws partition, like us-west-2."
  }

  validation {
    condition     = !contains(var.replica_regions, var.region) && length(distinct(var.replica_regions)) == length(var.replica_regions)
    error_message = "replica_regions must be distinct and must not include var.region."
  }
}

variable "operator_role_arn" {
  description = "The one role allowed to delete the secrets or write their values (kb-mcp secrets rotate/seed, restore): every other principal is denied by each secret's resource policy. Apply changes to the secrets under this role."
  type        = string

  validation {
    condition     = can(regex("^arn:aws:iam::[0-9]{12}:role/.+$", var.operator_role_arn))
    error_message = "operator_role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key (in var.region) for the log group and the alerts topic; null: the module creates one."
  type        = string
  default     = null
}

variable "age_check_schedule" {
  description = "When the scheduled `kb-mcp secrets age` runs (EventBridge Scheduler expression)."
  type        = string
  default     = "rate(1 day)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.age_check_schedule))
    error_message = "age_check_schedule must be a rate(...) or cron(...) expression."
  }
}

variable "create_billing_alarm" {
  description = "Create the $5/month Secrets Manager billing alarm (billing metrics are account-wide: enable it in one environment per account)."
  type        = bool
  default     = true
}

variable "billing_threshold_usd" {
  description = "Monthly Secrets Manager spend that raises the billing alarm."
  type        = number
  default     = 5
}

variable "secret_age_days_threshold" {
  description = "SecretAgeDays above this raises an alarm (the rotation policy is 30 days)."
  type        = number
  default     = 30
}

variable "task_cpu" {
  description = "Fargate CPU units per task: 512 (0.5 vCPU) starts kb-mcp serve in 3.2-3.6 s, 1024 in 1.6-1.9 s (COST.md: task size; 1024 needs task_memory >= 2048)."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate memory (MiB) per task."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64, matching the image."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_retention_days" {
  description = "Retention of the service's CloudWatch log group, one year by default (the EMF metrics are extracted at ingestion, so retention does not affect them)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- The fleet: connection budget, autoscaling, RDS Proxy (fleet.tf, proxy.tf) ---

variable "db_max_connections" {
  description = "The database's max_connections (SHOW max_connections; RDS derives it from the instance class). The plan refuses a fleet that could open more (fleet.tf)."
  type        = number

  validation {
    condition     = var.db_max_connections >= 1 && floor(var.db_max_connections) == var.db_max_connections
    error_message = "db_max_connections must be a whole number >= 1."
  }
}

variable "db_reserved_connections" {
  description = "Connections kept out of the fleet's budget: superuser_reserved_connections (3), the rotation's test login and its master login, migrations, monitoring, someone's psql."
  type        = number
  default     = 10

  validation {
    condition     = var.db_reserved_connections >= 3
    error_message = "db_reserved_connections must be at least 3 (PostgreSQL's superuser_reserved_connections default)."
  }
}

variable "db_pool_max_size" {
  description = "KB_MCP_DB_POOL_MAX_SIZE: connections one task's pool may hold (set in the task definition)."
  type        = number
  default     = 10

  validation {
    condition     = var.db_pool_max_size >= 1 && floor(var.db_pool_max_size) == var.db_pool_max_size
    error_message = "db_pool_max_size must be a whole number >= 1."
  }
}

variable "deployment_maximum_percent" {
  description = "ECS deployment_maximum_percent: during a rolling deployment up to this percentage of the maximum task count runs at once (counted in the connection budget)."
  type        = number
  default     = 200

  validation {
    condition     = var.deployment_maximum_percent >= 100 && var.deployment_maximum_percent <= 200
    error_message = "deployment_maximum_percent must be between 100 and 200."
  }
}

variable "autoscaling_max_tasks" {
  description = "Most tasks the service scales out to (Application Auto Scaling's max_capacity); capped by the connection budget. Equal to task_count: no scaling."
  type        = number
  default     = 4

  validation {
    condition     = var.autoscaling_max_tasks >= 1 && floor(var.autoscaling_max_tasks) == var.autoscaling_max_tasks
    error_message = "autoscaling_max_tasks must be a whole number >= 1."
  }
}

variable "autoscaling_cpu_target_percent" {
  description = "Target average CPU utilisation of the service (target tracking); the server's work is CPU-bound request building, so CPU follows load."
  type        = number
  default     = 60

  validation {
    condition     = var.autoscaling_cpu_target_percent >= 10 && var.autoscaling_cpu_target_percent <= 90
    error_message = "autoscaling_cpu_target_percent must be between 10 and 90."
  }
}

variable "autoscaling_requests_per_target" {
  description = "Optional second target: ALB requests per task per minute (ALBRequestCountPerTarget); null leaves CPU as the only target."
  type        = number
  default     = null
}

variable "db_host_override" {
  description = "KB_MCP_DB_HOST_OVERRIDE: the database host this region's tasks connect to instead of the secret's host (a failover region's endpoint, or the RDS Proxy's); null: the secret's host."
  type        = string
  default     = null
}

variable "enable_rds_proxy" {
  description = "Put an RDS Proxy between the tasks and the database (its own role reads the same secret; the tasks then connect to the proxy endpoint, RUNBOOK.md: RDS Proxy)."
  type        = bool
  default     = false
}

variable "db_instance_identifier" {
  description = "RDS instance behind the proxy (enable_rds_proxy); or use db_cluster_identifier."
  type        = string
  default     = null
}

variable "db_cluster_identifier" {
  description = "Aurora cluster behind the proxy (enable_rds_proxy); or use db_instance_identifier."
  type        = string
  default     = null
}

variable "db_security_group_id" {
  description = "Security group of the database: the rotation function and the proxy are allowed in through it (null: manage that rule yourself)."
  type        = string
  default     = null
}

# --- Tamper alerts, the runbook link (tamper.tf) ---

variable "runbook_url" {
  description = "Where on-call engineers open RUNBOOK.md (a browsable URL); alerts link to its sections."
  type        = string
  default     = "https://github.com/kb-mcp/kb-mcp/blob/main/secrets/RUNBOOK.md"

  validation {
    condition     = startswith(var.runbook_url, "https://")
    error_message = "runbook_url must be an https:// URL an on-call engineer can open."
  }
}

variable "cloudtrail_trail_name" {
  description = "Name of an existing trail (e.g. the organisation trail) that logs this account's management events; null: the module creates a multi-region one in the primary region (tamper alerts need a trail)."
  type        = string
  default     = null
}

# --- Automatic rotation (rotation.tf) ---

variable "enable_postgres_rotation" {
  description = "Rotate the PostgreSQL credentials automatically every rotation_days with the packaged rotation function (primary region only)."
  type        = bool
  default     = false
}

variable "rotation_package_path" {
  description = "Zip of the rotation function (secrets/build-rotation-package.sh); required when enable_postgres_rotation."
  type        = string
  default     = null
}

variable "rotation_days" {
  description = "Days between automatic rotations."
  type        = number
  default     = 30

  validation {
    condition     = var.rotation_days >= 1 && var.rotation_days <= 365
    error_message = "rotation_days must be between 1 and 365."
  }
}

# --- A second region (RUNBOOK.md: regional failover of the whole service) ---

variable "primary_region" {
  description = "null in the primary region. In a failover region: the primary's region; the secrets are then the primary's replicas (looked up, not created) and IAM names carry the region."
  type        = string
  default     = null
}
