// Hand-written to match migrations/{sqlite,postgres}; both backends share these definitions.

diesel::table! {
    namespaces (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        kind -> Text,
        owner_id -> Nullable<Text>,
        store_unsafe_pickles -> Bool,
    }
}

diesel::table! {
    models (id) {
        id -> Text,
        namespace_id -> Text,
        name -> Text,
        description -> Text,
        tags -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        visibility -> Text,
    }
}

diesel::table! {
    blobs (digest) {
        digest -> Text,
        size -> BigInt,
        created_at -> Timestamp,
        state -> Text,
    }
}

diesel::table! {
    versions (id) {
        id -> Text,
        model_id -> Text,
        version -> Text,
        status -> Text,
        created_at -> Timestamp,
        damage -> Nullable<Text>,
        lineage -> Nullable<Text>,
    }
}

diesel::table! {
    version_files (version_id, path) {
        version_id -> Text,
        path -> Text,
        digest -> Text,
        size -> BigInt,
    }
}

diesel::table! {
    upload_sessions (id) {
        id -> Text,
        digest -> Text,
        size -> BigInt,
        part_size -> BigInt,
        upload_offset -> BigInt,
        backend_upload_id -> Text,
        hash_state -> Binary,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        user_id -> Nullable<Text>,
        writer -> Nullable<Text>,
        writer_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    upload_parts (session_id, part_number) {
        session_id -> Text,
        part_number -> Integer,
        etag -> Text,
        size -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        actor -> Text,
        action -> Text,
        target -> Text,
        detail -> Text,
        remote_addr -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        is_admin -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    memberships (namespace_id, user_id) {
        namespace_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        token_hash -> Text,
        scopes -> Text,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    oci_documents (model_id, digest) {
        model_id -> Text,
        digest -> Text,
        media_type -> Text,
        body -> Text,
        version_id -> Nullable<Text>,
        subject -> Nullable<Text>,
        artifact_type -> Nullable<Text>,
    }
}

diesel::table! {
    oci_version_manifests (version_id) {
        version_id -> Text,
        model_id -> Text,
        digest -> Text,
    }
}

diesel::table! {
    oci_uploads (id) {
        id -> Text,
        namespace -> Text,
        model -> Text,
        user_id -> Text,
        upload_offset -> BigInt,
        part_size -> BigInt,
        backend_upload_id -> Text,
        part_etags -> Text,
        hash_state -> Binary,
        writer -> Nullable<Text>,
        writer_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    oci_tar_layers (digest) {
        digest -> Text,
        file_digest -> Text,
        path -> Text,
        header -> Binary,
        file_size -> BigInt,
        size -> BigInt,
    }
}

diesel::table! {
    oci_blob_links (namespace, model, digest) {
        namespace -> Text,
        model -> Text,
        digest -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ui_sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        scopes -> Text,
        token_id -> Nullable<Text>,
        csrf_token -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    jwt_keys (kid) {
        kid -> Text,
        private_key -> Binary,
        public_key -> Binary,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    blob_grants (digest, user_id) {
        digest -> Text,
        user_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(models -> namespaces (namespace_id));
diesel::joinable!(memberships -> namespaces (namespace_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(versions -> models (model_id));
diesel::joinable!(version_files -> versions (version_id));
diesel::joinable!(upload_parts -> upload_sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    oci_blob_links,
    oci_uploads,
    oci_version_manifests,
    namespaces,
    models,
    blobs,
    versions,
    version_files,
    upload_sessions,
    upload_parts,
    audit_log,
    users,
    memberships,
    api_tokens,
    jwt_keys,
    blob_grants,
);

diesel::table! {
    pipeline_jobs (id) {
        id -> Text,
        version_id -> Text,
        kind -> Text,
        state -> Text,
        attempts -> Integer,
        max_attempts -> Integer,
        message -> Nullable<Text>,
        report -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        options -> Nullable<Text>,
        variant -> Nullable<Text>,
        device -> Nullable<Text>,
        engine -> Nullable<Text>,
    }
}

diesel::table! {
    variants (version_id, name) {
        version_id -> Text,
        name -> Text,
        status -> Text,
        model_path -> Text,
        opset -> Integer,
        inputs -> Text,
        outputs -> Text,
        validation -> Nullable<Text>,
        created_at -> Timestamp,
        passes -> Nullable<Text>,
    }
}

diesel::table! {
    variant_files (version_id, variant, path) {
        version_id -> Text,
        variant -> Text,
        path -> Text,
        digest -> Text,
        size -> BigInt,
    }
}

diesel::table! {
    manifests (id) {
        id -> Text,
        version_id -> Text,
        alias -> Nullable<Text>,
        sequence -> BigInt,
        payload -> Text,
        jws -> Text,
        kid -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        alias_id -> Nullable<Text>,
    }
}

diesel::table! {
    aliases (id) {
        id -> Text,
        model_id -> Text,
        name -> Text,
        version_id -> Text,
        sequence -> BigInt,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    alias_events (id) {
        id -> Text,
        alias_id -> Text,
        from_version -> Nullable<Text>,
        to_version -> Text,
        sequence -> BigInt,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(aliases -> versions (version_id));
diesel::allow_tables_to_appear_in_same_query!(aliases, versions);

diesel::table! {
    model_tags (model_id, tag) {
        model_id -> Text,
        tag -> Text,
    }
}

// The model listing's filters: subqueries over tags and deployable variants.
diesel::allow_tables_to_appear_in_same_query!(model_tags, variants);
diesel::allow_tables_to_appear_in_same_query!(model_tags, namespaces);
diesel::allow_tables_to_appear_in_same_query!(model_tags, models);
diesel::allow_tables_to_appear_in_same_query!(model_tags, versions);
diesel::allow_tables_to_appear_in_same_query!(variants, namespaces);
diesel::allow_tables_to_appear_in_same_query!(variants, models);
diesel::allow_tables_to_appear_in_same_query!(variants, versions);
diesel::allow_tables_to_appear_in_same_query!(variant_files, versions);

diesel::table! {
    runners (id) {
        id -> Text,
        name -> Text,
        token_id -> Text,
        device -> Text,
        device_kind -> Text,
        device_name -> Text,
        memory_bytes -> Nullable<BigInt>,
        driver -> Nullable<Text>,
        engine -> Text,
        kiln_version -> Text,
        capabilities -> Text,
        threads -> Nullable<Integer>,
        registered_at -> Timestamp,
        last_heartbeat_at -> Timestamp,
        engines -> Text,
    }
}

diesel::table! {
    benchmark_results (id) {
        id -> Text,
        version_id -> Text,
        variant -> Text,
        job_id -> Text,
        runner_id -> Text,
        device -> Text,
        batch_size -> BigInt,
        result -> Text,
        measured_at -> Timestamp,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    retention_rules (namespace_id, model_id) {
        namespace_id -> Text,
        model_id -> Text,
        keep_last -> Nullable<BigInt>,
        keep_days -> Nullable<BigInt>,
        keep_aliased_days -> Nullable<BigInt>,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    namespace_quotas (namespace_id) {
        namespace_id -> Text,
        max_bytes -> Nullable<BigInt>,
        max_versions -> Nullable<BigInt>,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

// Collection's reference checks and the usage read model join blobs with everything that names them.
diesel::allow_tables_to_appear_in_same_query!(variant_files, blobs);
diesel::allow_tables_to_appear_in_same_query!(variant_files, models);
diesel::allow_tables_to_appear_in_same_query!(oci_tar_layers, blobs);
diesel::allow_tables_to_appear_in_same_query!(retention_rules, namespaces);
diesel::allow_tables_to_appear_in_same_query!(namespace_quotas, namespaces);

diesel::table! {
    webhook_subscriptions (id) {
        id -> Text,
        namespace_id -> Text,
        model -> Text,
        url -> Text,
        events -> Text,
        description -> Text,
        secret -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        consecutive_failures -> Integer,
        created_at -> Timestamp,
        created_by -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        subscription_id -> Text,
        event_id -> Text,
        event_type -> Text,
        subject -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        seq -> BigInt,
    }
}

diesel::table! {
    webhook_attempts (delivery_id, attempt) {
        delivery_id -> Text,
        attempt -> Integer,
        at -> Timestamp,
        status -> Nullable<Integer>,
        latency_ms -> BigInt,
        response -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_subscriptions (subscription_id));
diesel::allow_tables_to_appear_in_same_query!(webhook_deliveries, webhook_subscriptions);

diesel::table! {
    replicas (id) {
        id -> Text,
        started_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    version_links (version_id, kind, position) {
        version_id -> Text,
        kind -> Text,
        position -> Integer,
        linked_version_id -> Text,
        role -> Text,
    }
}

// A version's links read the status of the versions they name; what was derived from a version is read
// with the derived version's model and namespace.
diesel::allow_tables_to_appear_in_same_query!(version_links, versions);
diesel::allow_tables_to_appear_in_same_query!(version_links, models);
diesel::allow_tables_to_appear_in_same_query!(version_links, namespaces);

diesel::table! {
    distillations (job_id) {
        job_id -> Text,
        target -> Text,
        request -> Text,
        data_version_id -> Nullable<Text>,
        requested_by -> Text,
        requester_name -> Text,
        requester_visible -> Nullable<Text>,
        progress -> Nullable<Text>,
        checkpoint_step -> Nullable<BigInt>,
        student_version_id -> Nullable<Text>,
    }
}
diesel::joinable!(distillations -> pipeline_jobs (job_id));
diesel::allow_tables_to_appear_in_same_query!(distillations, pipeline_jobs);

diesel::table! {
    servings (id) {
        id -> Text,
        model_id -> Text,
        token_id -> Text,
        reported_by -> Text,
        name -> Text,
        alias -> Nullable<Text>,
        version -> Text,
        variant -> Text,
        sha256 -> Text,
        sequence -> BigInt,
        engine -> Text,
        device -> Text,
        endpoints -> Text,
        started_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}
