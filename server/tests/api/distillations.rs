//! Distillation jobs through the API, with a runner played by the test: who may ask for one, see it and
//! cancel it; the runner's side refused once the job is cancelled; progress and checkpoints kept; the
//! student committed as the asker's version with its lineage.

use kiln_core::api::{Distillation, DistillationJob, DistillationState, FileEntry, VersionDetail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, expect_error, expect_json};
use crate::runners::{TestRunner, registration};

const TEACHER: &[(&str, &[u8])] = &[("config.json", b"{}"), ("model.safetensors", b"teacher")];

/// A user with `role` in `acme` (none: no membership); their access token.
async fn user(app: &TestApp, name: &str, role: Option<&str>) -> String {
    let password = format!("{name}'s long password");
    let created = json!({ "name": name, "password": password });
    expect_json::<Value>(
        app.post_json("/api/v1/users", &created).await,
        StatusCode::CREATED,
    )
    .await;
    if let Some(role) = role {
        let member = app
            .request(
                Method::PUT,
                &format!("/api/v1/namespaces/acme/members/{name}"),
            )
            .json(&json!({ "role": role }));
        assert!(member.send().await.unwrap().status().is_success());
    }
    let login = app
        .anonymous(Method::POST, "/api/v1/auth/token")
        .json(&json!({ "username": name, "password": password }));
    let answer: Value = expect_json(login.send().await.unwrap(), StatusCode::OK).await;
    answer["access_token"].as_str().unwrap().to_owned()
}

async fn ask(app: &TestApp, token: Option<&str>, teacher: &str, body: Value) -> reqwest::Response {
    let (model, version) = teacher.split_once(':').unwrap();
    let mut request = app
        .anonymous(
            Method::POST,
            &format!("/api/v1/models/{model}/versions/{version}/distillations"),
        )
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.anonymous(Method::GET, path)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn teacher_and_namespace(app: &TestApp) {
    expect_json::<Value>(
        app.push("acme/teacher:1", TEACHER).await,
        StatusCode::CREATED,
    )
    .await;
    expect_json::<Value>(
        app.push("acme/corpus:1", &[("ids.npy", b"ids")]).await,
        StatusCode::CREATED,
    )
    .await;
}

async fn who_may_ask_see_and_cancel(app: TestApp) {
    teacher_and_namespace(&app).await;
    let reader = user(&app, "reader", Some("reader")).await;
    let writer = user(&app, "writer", Some("writer")).await;
    let stranger = user(&app, "stranger", None).await;
    let body = json!({ "into": "acme/student:1", "student": "layers=2", "data": "acme/corpus:1" });

    // The teacher (acme is private) is invisible to a stranger; a reader may not write the student.
    expect_error(
        ask(&app, Some(&stranger), "acme/teacher:1", body.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        ask(&app, Some(&reader), "acme/teacher:1", body.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(
        ask(&app, None, "acme/teacher:1", body.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // A dataset the asker cannot see is refused as absent, naming the field.
    let hidden = json!({ "into": "acme/student:1", "data": "other/corpus:1" });
    let refused = expect_error(
        ask(&app, Some(&writer), "acme/teacher:1", hidden).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("data:"),
        "{refused}"
    );
    // The student must be new, and one job makes it at a time.
    let exists = json!({ "into": "acme/teacher:1" });
    expect_error(
        ask(&app, Some(&writer), "acme/teacher:1", exists).await,
        StatusCode::CONFLICT,
        "version_conflict",
    )
    .await;

    let queued: Distillation = expect_json(
        ask(&app, Some(&writer), "acme/teacher:1", body.clone()).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(queued.state, DistillationState::Queued);
    assert_eq!(
        (queued.teacher.as_str(), queued.requested_by.as_str()),
        ("acme/teacher:1", "writer")
    );
    expect_error(
        ask(&app, Some(&writer), "acme/teacher:1", body).await,
        StatusCode::CONFLICT,
        "version_conflict",
    )
    .await;

    let path = format!("/api/v1/distillations/{}", queued.id);
    expect_error(
        get_as(&app, &stranger, &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let seen: Distillation = expect_json(get_as(&app, &reader, &path).await, StatusCode::OK).await;
    assert_eq!(seen.id, queued.id);
    let listed: Vec<Distillation> = expect_json(
        get_as(
            &app,
            &reader,
            "/api/v1/models/acme/teacher/versions/1/distillations",
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed.len(), 1);
    // The teacher's own pipeline does not list the job.
    let teacher: VersionDetail = expect_json(
        app.get("/api/v1/models/acme/teacher/versions/1").await,
        StatusCode::OK,
    )
    .await;
    assert!(teacher.pipeline.iter().all(|j| j.kind != "distill"));

    let cancel = |token: String| {
        let app = &app;
        let path = format!("{path}/cancel");
        async move {
            app.anonymous(Method::POST, &path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    expect_error(
        cancel(reader.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(cancel(stranger).await, StatusCode::NOT_FOUND, "not_found").await;
    let cancelled: Distillation = expect_json(cancel(writer.clone()).await, StatusCode::OK).await;
    assert_eq!(cancelled.state, DistillationState::Cancelled);
    assert_eq!(cancelled.message.as_deref(), Some("cancelled by writer"));
    expect_error(
        cancel(writer).await,
        StatusCode::CONFLICT,
        "distillation_finished",
    )
    .await;
}

async fn claim(runner: &TestRunner<'_>) -> Option<DistillationJob> {
    let response = runner.post("/distillations/claim").send().await.unwrap();
    if response.status() == StatusCode::NO_CONTENT {
        return None;
    }
    Some(expect_json(response, StatusCode::OK).await)
}

fn put<'r>(
    app: &TestApp,
    runner: &TestRunner<'r>,
    path: &str,
    body: &'static [u8],
) -> reqwest::RequestBuilder {
    app.anonymous(Method::PUT, &format!("/api/v1/runners/{}{path}", runner.id))
        .bearer_auth(&runner.token)
        .body(body)
}

async fn a_runner_trains_checkpoints_and_commits_the_student(app: TestApp) {
    teacher_and_namespace(&app).await;
    let body = json!({ "into": "acme/student:1", "data": "acme/corpus:1", "steps": 10 });
    let queued: Distillation = expect_json(
        ask(&app, Some(ADMIN_TOKEN), "acme/teacher:1", body).await,
        StatusCode::CREATED,
    )
    .await;
    let mut on_gpu = registration("gpu");
    on_gpu["device"] = json!("cuda:0");
    let gpu = TestRunner::register_as(&app, "gpu", on_gpu).await;
    assert!(
        claim(&gpu).await.is_none(),
        "a cpu job is not a cuda runner's"
    );
    let runner = TestRunner::register_as(&app, "cpu", registration("cpu")).await;
    let job = claim(&runner).await.expect("the job");
    assert_eq!(
        (job.job_id.as_str(), job.attempt, job.checkpoint_step),
        (queued.id.as_str(), 1, None)
    );
    assert_eq!(job.teacher_files.len(), 2);
    assert_eq!(job.data.as_deref(), Some("acme/corpus:1"));
    assert!(claim(&runner).await.is_none(), "claimed once");

    // Its inputs, by path; nothing outside them.
    let teacher_file = runner_get(
        &app,
        &runner,
        &format!("/distillations/{}/teacher/model.safetensors", job.job_id),
    )
    .await;
    assert_eq!(teacher_file.bytes().await.unwrap().as_ref(), b"teacher");
    let data_file = runner_get(
        &app,
        &runner,
        &format!("/distillations/{}/data/ids.npy", job.job_id),
    )
    .await;
    assert_eq!(data_file.bytes().await.unwrap().as_ref(), b"ids");

    // Progress in a heartbeat, a checkpoint kept, both shown.
    let beat = json!({ "job_id": job.job_id, "progress": {
        "step": 5, "steps": 10, "loss": 0.5, "steps_per_second": 2.0, "eta_seconds": 3, "checkpoint_step": 5 } });
    assert_eq!(
        runner
            .post("/heartbeat")
            .json(&beat)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let saved = put(
        &app,
        &runner,
        &format!("/distillations/{}/checkpoint?step=5", job.job_id),
        b"state at 5",
    );
    assert_eq!(saved.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let loaded = runner_get(
        &app,
        &runner,
        &format!("/distillations/{}/checkpoint", job.job_id),
    )
    .await;
    assert_eq!(loaded.bytes().await.unwrap().as_ref(), b"state at 5");
    let shown: Distillation = expect_json(
        app.get(&format!("/api/v1/distillations/{}", job.job_id))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown.state, DistillationState::Running);
    assert_eq!(
        shown.progress.as_ref().map(|p| (p.step, p.checkpoint_step)),
        Some((5, Some(5)))
    );

    // The student's files, then the report that commits them.
    let mut files: Vec<FileEntry> = Vec::new();
    for (path, data) in [
        ("config.json", &b"{\"student\": true}"[..]),
        ("model.safetensors", b"student"),
    ] {
        let stored = put(
            &app,
            &runner,
            &format!("/distillations/{}/files/{path}", job.job_id),
            data,
        );
        files.push(expect_json(stored.send().await.unwrap(), StatusCode::OK).await);
    }
    let report = json!({ "settings": { "training": { "steps": 10 } }, "teacher_parameters": 100,
                         "student_parameters": 50, "trained": { "top1": 0.9 } });
    let done = runner
        .post(&format!("/distillations/{}/result", job.job_id))
        .json(&json!({ "outcome": "succeeded", "files": files, "report": report }));
    assert_eq!(done.send().await.unwrap().status(), StatusCode::NO_CONTENT);

    let student: VersionDetail = expect_json(
        app.get("/api/v1/models/acme/student/versions/1").await,
        StatusCode::OK,
    )
    .await;
    let lineage = serde_json::to_value(student.lineage.unwrap()).unwrap();
    assert_eq!(lineage["parents"][0]["reference"], "acme/teacher:1");
    assert_eq!(lineage["datasets"][0]["reference"], "acme/corpus:1");
    assert_eq!(lineage["hyperparameters"]["training.steps"], 10);
    let finished: Distillation = expect_json(
        app.get(&format!("/api/v1/distillations/{}", job.job_id))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(finished.state, DistillationState::Succeeded);
    let comparison = finished
        .comparison
        .expect("the student next to its teacher");
    assert_eq!(
        (comparison.student.as_str(), comparison.student_parameters),
        ("acme/student:1", 50)
    );
    // The state is gone with the job; the finished job takes nothing more.
    let late = runner_get(
        &app,
        &runner,
        &format!("/distillations/{}/checkpoint", job.job_id),
    )
    .await;
    expect_error(late, StatusCode::CONFLICT, "lease_lost").await;
}

async fn a_cancelled_job_refuses_its_runner(app: TestApp) {
    teacher_and_namespace(&app).await;
    let queued: Distillation = expect_json(
        ask(
            &app,
            Some(ADMIN_TOKEN),
            "acme/teacher:1",
            json!({ "into": "acme/student:1" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let runner = TestRunner::register_as(&app, "cpu", registration("cpu")).await;
    let job = claim(&runner).await.expect("the job");
    let cancel = app
        .post_json(
            &format!("/api/v1/distillations/{}/cancel", queued.id),
            &json!({}),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let beat = runner
        .post("/heartbeat")
        .json(&json!({ "job_id": job.job_id }))
        .send()
        .await
        .unwrap();
    expect_error(beat, StatusCode::CONFLICT, "lease_lost").await;
    let upload = put(
        &app,
        &runner,
        &format!("/distillations/{}/files/model.safetensors", job.job_id),
        b"late",
    );
    expect_error(
        upload.send().await.unwrap(),
        StatusCode::CONFLICT,
        "lease_lost",
    )
    .await;
    let report = runner
        .post(&format!("/distillations/{}/result", job.job_id))
        .json(&json!({ "outcome": "failed", "message": "too late" }));
    expect_error(
        report.send().await.unwrap(),
        StatusCode::CONFLICT,
        "lease_lost",
    )
    .await;
    let missing = app.get("/api/v1/models/acme/student/versions/1").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn runner_get(app: &TestApp, runner: &TestRunner<'_>, path: &str) -> reqwest::Response {
    app.anonymous(Method::GET, &format!("/api/v1/runners/{}{path}", runner.id))
        .bearer_auth(&runner.token)
        .send()
        .await
        .unwrap()
}

/// What changed while a job waited or trained is honoured: a deleted dataset fails it at claim, and an
/// asker who lost write access gets no student.
async fn changes_while_it_trained_are_honoured(app: TestApp) {
    teacher_and_namespace(&app).await;
    let writer = user(&app, "writer", Some("writer")).await;
    let with_data = json!({ "into": "acme/student:1", "data": "acme/corpus:1" });
    let first: Distillation = expect_json(
        ask(&app, Some(&writer), "acme/teacher:1", with_data).await,
        StatusCode::CREATED,
    )
    .await;
    let deleted = app
        .request(Method::DELETE, "/api/v1/models/acme/corpus/versions/1")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let runner = TestRunner::register_as(&app, "cpu", registration("cpu")).await;
    assert!(claim(&runner).await.is_none(), "nothing left to claim");
    let failed: Distillation = expect_json(
        app.get(&format!("/api/v1/distillations/{}", first.id))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(failed.state, DistillationState::Failed);
    assert_eq!(
        failed.message.as_deref(),
        Some("the dataset version acme/corpus:1 was deleted")
    );

    let second: Distillation = expect_json(
        ask(
            &app,
            Some(&writer),
            "acme/teacher:1",
            json!({ "into": "acme/student:2" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let job = claim(&runner).await.expect("the second job");
    assert_eq!(job.job_id, second.id);
    let stored = put(
        &app,
        &runner,
        &format!("/distillations/{}/files/model.safetensors", job.job_id),
        b"student",
    );
    let file: FileEntry = expect_json(stored.send().await.unwrap(), StatusCode::OK).await;
    let removed = app
        .request(Method::DELETE, "/api/v1/namespaces/acme/members/writer")
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success());
    let report = runner
        .post(&format!("/distillations/{}/result", job.job_id))
        .json(&json!({ "outcome": "succeeded", "files": [file], "report": {} }));
    assert_eq!(
        report.send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let ended: Distillation = expect_json(
        app.get(&format!("/api/v1/distillations/{}", second.id))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ended.state, DistillationState::Failed);
    assert!(
        ended
            .message
            .unwrap()
            .contains("may no longer write to acme")
    );
    assert_eq!(
        app.get("/api/v1/models/acme/student/versions/2")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

crate::on_every_backend!(
    changes_while_it_trained_are_honoured,
    who_may_ask_see_and_cancel,
    a_runner_trains_checkpoints_and_commits_the_student,
    a_cancelled_job_refuses_its_runner,
);
