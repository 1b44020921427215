output "secret_arns" {
  description = "ARNs of the secrets (seed their values with `kb-mcp secrets seed` or put-secret-value)."
  value       = local.protected_secret_arns
}

output "task_role_arn" {
  description = "Role the server runs as: GetSecretValue on its own secrets only."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "Role ECS uses to pull the image and write logs."
  value       = aws_iam_role.execution.arn
}

output "task_role_policy" {
  description = "The rendered task-role policy (same as `kb-mcp secrets policy`)."
  value       = aws_iam_role_policy.task_secrets.policy
}

output "operator_policy_arn" {
  description = "Attach to the role that runs `kb-mcp secrets rotate/age/seed`."
  value       = aws_iam_policy.operator_rotation.arn
}

output "alerts_topic_arn" {
  description = "SNS topic for alarms and `kb-mcp secrets age` (its --sns-topic-arn)."
  value       = aws_sns_topic.alerts.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the tasks; the KbMcp EMF metrics come from it."
  value       = aws_cloudwatch_log_group.service.name
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.server.name
}

output "target_group_arn" {
  description = "Target group health-checking /readyz."
  value       = aws_lb_target_group.server.arn
}

output "age_check_schedule_name" {
  description = "EventBridge Scheduler schedule running `kb-mcp secrets age` (RUNBOOK.md: the scheduled age check)."
  value       = aws_scheduler_schedule.age_check.name
}

output "age_check_role_arn" {
  description = "Role of the scheduled age check: secret metadata reads and sns:Publish only."
  value       = aws_iam_role.age_check.arn
}

output "kms_key_arn" {
  description = "Key encrypting the service log group and the alerts topic."
  value       = local.kms_key_arn
}

output "connection_budget" {
  description = "The fleet's worst case against the database: tasks x pool x deployment, plus the reserve, and max_connections (fleet.tf)."
  value       = local.connection_budget
}

output "rotation_function_arn" {
  description = "The PostgreSQL rotation function (null unless enable_postgres_rotation)."
  value       = local.rotation_enabled ? aws_lambda_function.rotation[0].arn : null
}

output "rds_proxy_endpoint" {
  description = "The RDS Proxy endpoint the tasks connect to (null unless enable_rds_proxy)."
  value       = var.enable_rds_proxy ? aws_db_proxy.this[0].endpoint : null
}
