//! Any bytes as a job message. Beyond "never panics": an accepted job survives the store's
//! round trip (serde JSON, as `jobs.job` keeps it) unchanged, and its normalised form is
//! accepted again as the same job (what `orchestrator validate` prints can be submitted).
#![no_main]

mod common;

use jobs::Job;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(job) = jobs::parse_job(data, &common::CATALOG) else {
        return;
    };
    let text = serde_json::to_string(&job).expect("an accepted job serializes");
    let stored: Job = serde_json::from_str(&text).expect("a stored job reads back");
    assert_eq!(stored, job, "the store's round trip changed the job");
    match jobs::parse_job(text.as_bytes(), &common::CATALOG) {
        Ok(again) => assert_eq!(again, job, "validating the normalised job changed it"),
        Err(r) => panic!("the normalised job is refused: {:?}\n{text}", r.problems),
    }
});
