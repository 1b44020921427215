# The fleet: how many tasks, how many database connections they can open, and the plan-time
# check that the second never exceeds what the database allows.
#
# Each task's pool holds at most var.db_pool_max_size connections; a credential rotation
# adds one per task for the new pool's probe (measured peak/steady 1.04-1.12, never two
# pools: RUNBOOK.md, "Sizing the database for a fleet"); a rolling deployment runs up to
# var.deployment_maximum_percent of the tasks at once. Worst case, all three together:
#
#   ceil(max_tasks x deployment_maximum_percent / 100) x (pool_max + 1) + reserved
#
# which must not exceed var.db_max_connections. With the RDS Proxy the tasks' connections
# end at the proxy, which holds at most its max_connections_percent of the database's:
# the proxy's budget is then what matters (proxy.tf), and this check is not applied.

locals {
  cluster_name = reverse(split("/", var.cluster))[0]

  peak_tasks = ceil(var.autoscaling_max_tasks * var.deployment_maximum_percent / 100)
  connection_budget = {
    max_tasks                  = var.autoscaling_max_tasks
    deployment_maximum_percent = var.deployment_maximum_percent
    peak_tasks                 = local.peak_tasks
    connections_per_task       = var.db_pool_max_size + 1
    reserved                   = var.db_reserved_connections
    peak_connections           = local.peak_tasks * (var.db_pool_max_size + 1) + var.db_reserved_connections
    db_max_connections         = var.db_max_connections
    enforced                   = !var.enable_rds_proxy
  }
  # The most tasks the database allows at this pool size and deployment percentage.
  max_tasks_the_database_allows = floor(floor((var.db_max_connections - var.db_reserved_connections) / (var.db_pool_max_size + 1)) * 100 / var.deployment_maximum_percent)
}

resource "terraform_data" "connection_budget" {
  input = local.connection_budget

  lifecycle {
    precondition {
      condition     = !local.connection_budget.enforced || local.connection_budget.peak_connections <= var.db_max_connections
      error_message = "connection budget exceeded: ${local.peak_tasks} tasks at peak (autoscaling_max_tasks ${var.autoscaling_max_tasks} x deployment_maximum_percent ${var.deployment_maximum_percent}%) x ${var.db_pool_max_size + 1} connections (db_pool_max_size ${var.db_pool_max_size} + 1 for a rotation's probe) + db_reserved_connections ${var.db_reserved_connections} = ${local.connection_budget.peak_connections} > db_max_connections ${var.db_max_connections}. Lower autoscaling_max_tasks to ${max(local.max_tasks_the_database_allows, 0)} or less, lower db_pool_max_size or deployment_maximum_percent, raise max_connections, or enable_rds_proxy."
    }

    precondition {
      condition     = var.task_count <= var.autoscaling_max_tasks
      error_message = "task_count ${var.task_count} (the autoscaling minimum) exceeds autoscaling_max_tasks ${var.autoscaling_max_tasks}."
    }
  }
}

# Target tracking on CPU: the server's work per request is CPU (the OpenAI SDK's request
# building and response parsing, JSON, the MCP framing) while it waits on PostgreSQL and
# OpenAI without holding CPU, so CPU utilisation rises with load whatever the mix of tools.
# Requests per target is optional: a search and an add cost very different amounts, so a
# request count is a weaker signal unless the traffic is uniform.
resource "aws_appautoscaling_target" "service" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${local.cluster_name}/${aws_ecs_service.server.name}"
  min_capacity       = var.task_count
  max_capacity       = var.autoscaling_max_tasks

  depends_on = [terraform_data.connection_budget]
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${local.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service.service_namespace
  scalable_dimension = aws_appautoscaling_target.service.scalable_dimension
  resource_id        = aws_appautoscaling_target.service.resource_id

  target_tracking_scaling_policy_configuration {
    target_value = var.autoscaling_cpu_target_percent
    # A new task is ready in seconds (COST.md: task size); scale in slowly, a stopping
    # task drains for up to drain_timeout_s.
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  count = var.autoscaling_requests_per_target == null ? 0 : 1

  name               = "${local.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service.service_namespace
  scalable_dimension = aws_appautoscaling_target.service.scalable_dimension
  resource_id        = aws_appautoscaling_target.service.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling_requests_per_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      # app/<name>/<id> of the listener's load balancer, then the target group's suffix.
      resource_label = "${join("/", slice(split("/", var.alb_listener_arn), 1, 4))}/${aws_lb_target_group.server.arn_suffix}"
    }
  }
}
