-- A PostgreSQL database playing a Supabase project's, for baasmigrate's
-- tests of --source supabase: the tables Supabase Auth and Storage keep
-- users and files in, with the columns, types, defaults, keys and
-- constraints their migrations leave (written for these tests from the
-- columns the migrations of supabase/auth and supabase/storage define,
-- not copied from them). Roles, grants, row level security, functions and
-- triggers are left out: the extractors only read these tables.
--
-- auth (supabase/auth migrations/): users and identities in auth.sql
-- (00_init_auth_schema up to 20240214120130_add_is_anonymous_column;
-- identities' uuid id since 20231117164230), here mfa_factors (20221003041349_add_mfa_schema;
-- factor_type 'phone' and phone 20240729123726; last_challenged_at
-- 20240802193726; web_authn_* 20241009103726;
-- last_webauthn_challenge_data 20250925093508).
-- storage (supabase/storage migrations/tenant/): buckets and objects of
-- 0002-storage-schema with path_tokens (0003), public (0008), size limit
-- and mime types (0013, 0014), version (0016), owner_id (0018),
-- user_metadata (0025), the bucket type (0038) and the (bucket_id, name
-- COLLATE "C") ordering index.
-- auth.users and auth.identities: auth.sql (Schema puts it first).

CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone');
CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');

CREATE TABLE auth.mfa_factors (
    id                           uuid NOT NULL,
    user_id                      uuid NOT NULL,
    friendly_name                text,
    factor_type                  auth.factor_type NOT NULL,
    status                       auth.factor_status NOT NULL,
    created_at                   timestamptz NOT NULL,
    updated_at                   timestamptz NOT NULL,
    secret                       text,
    phone                        text DEFAULT NULL,
    last_challenged_at           timestamptz UNIQUE DEFAULT NULL,
    web_authn_credential         jsonb,
    web_authn_aaguid             uuid,
    last_webauthn_challenge_data jsonb,
    CONSTRAINT mfa_factors_pkey PRIMARY KEY (id),
    CONSTRAINT mfa_factors_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique ON auth.mfa_factors (friendly_name, user_id) WHERE trim(friendly_name) <> '';
CREATE INDEX mfa_factors_user_id_idx ON auth.mfa_factors (user_id);
CREATE UNIQUE INDEX unique_phone_factor_per_user ON auth.mfa_factors (user_id, phone);

CREATE SCHEMA storage;

CREATE TYPE storage.buckettype AS ENUM ('STANDARD', 'ANALYTICS', 'VECTOR');

CREATE TABLE storage.buckets (
    id                 text NOT NULL,
    name               text NOT NULL,
    owner              uuid,
    created_at         timestamptz DEFAULT now(),
    updated_at         timestamptz DEFAULT now(),
    public             boolean DEFAULT false,
    avif_autodetection boolean DEFAULT false,
    file_size_limit    bigint,
    allowed_mime_types text[],
    owner_id           text,
    type               storage.buckettype NOT NULL DEFAULT 'STANDARD',
    CONSTRAINT buckets_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX bname ON storage.buckets (name);

CREATE TABLE storage.objects (
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    bucket_id        text,
    name             text,
    owner            uuid,
    created_at       timestamptz DEFAULT now(),
    updated_at       timestamptz DEFAULT now(),
    last_accessed_at timestamptz DEFAULT now(),
    metadata         jsonb,
    path_tokens      text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
    version          text,
    owner_id         text,
    user_metadata    jsonb,
    CONSTRAINT objects_pkey PRIMARY KEY (id),
    CONSTRAINT "objects_bucketId_fkey" FOREIGN KEY (bucket_id) REFERENCES storage.buckets (id)
);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects (bucket_id, name);
CREATE INDEX idx_objects_bucket_id_name ON storage.objects (bucket_id, name COLLATE "C");
CREATE INDEX name_prefix_search ON storage.objects (name text_pattern_ops);
