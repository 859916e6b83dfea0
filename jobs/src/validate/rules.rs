//! The job message rules, field by field, with catalog defaults applied.
//!
//! Each part reads its fields from the top-level object and returns its piece of the [`Job`]
//! (or `None` when a required field of it is wrong; the problems say why). [`job`] calls every
//! part before giving up on any, so a message gets all its problems at once, in field order:
//! [`identity`], [`program`], [`conf`], [`deps`], [`resources`] (driver, executor, spot;
//! then [`overhead`] folds `sparkConf`'s memoryOverhead keys into them),
//! [`meta`] (tags, annotations), [`volumes`], [`timing`] (retry, ttl, timeout, deadline).
//! [`fields`] holds the readers they share.

mod conf;
mod deps;
mod fields;
mod identity;
mod meta;
mod overhead;
mod program;
mod resources;
#[cfg(test)]
mod testing;
mod timing;
mod volumes;

use serde_json::Value;

use super::reader::{Ctx, JsonPath};
use crate::model::Job;

pub(crate) const TOP_FIELDS: &[&str] = &[
    "apiVersion",
    "id",
    "name",
    "namespace",
    "priority",
    "type",
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "mainApplicationFile",
    "mainClass",
    "arguments",
    "sparkVersion",
    "sparkConf",
    "hadoopConf",
    "env",
    "javaOptions",
    "deps",
    "driver",
    "executor",
    "spot",
    "tags",
    "annotations",
    "volumes",
    "retry",
    "ttl",
    "deadline",
    "timeout",
];

/// The whole message. Returns `None` when a required part is missing (problems say why).
pub(super) fn job(ctx: &mut Ctx<'_>, value: &Value) -> Option<Job> {
    let obj = ctx.object(value, &JsonPath::root(), TOP_FIELDS, &[])?;
    let identity = identity::identity(ctx, &obj);
    let program = program::program(ctx, &obj);
    let mut conf = conf::conf(ctx, &obj);
    let deps = deps::deps(ctx, &obj);
    let mut pods = resources::pods(ctx, &obj);
    overhead::fold(ctx, &mut conf.spark_conf, pods.as_mut());
    let meta = meta::meta(ctx, &obj);
    let volumes = volumes::volumes(ctx, &obj);
    let timing = timing::timing(ctx, &obj);

    let (identity, program, pods, timing) = (identity?, program?, pods?, timing?);
    Some(Job {
        api_version: identity.api_version,
        id: identity.id,
        name: identity.name,
        namespace: identity.namespace,
        priority: identity.priority,
        app_type: program.app_type,
        image: program.image,
        image_pull_policy: program.image_pull_policy,
        image_pull_secrets: program.image_pull_secrets,
        main_application_file: program.main_application_file,
        main_class: program.main_class,
        arguments: program.arguments,
        spark_version: program.spark_version,
        spark_conf: conf.spark_conf,
        hadoop_conf: conf.hadoop_conf,
        env: conf.env,
        java_options: conf.java_options,
        deps,
        driver: pods.driver,
        executor: pods.executor,
        spot: pods.spot,
        tags: meta.tags,
        annotations: meta.annotations,
        volumes,
        retry: timing.retry,
        ttl: timing.ttl,
        deadline: timing.deadline,
        timeout: timing.timeout,
    })
}
