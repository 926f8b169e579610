-- Supabase Auth's auth.users and auth.identities, as the supabase/auth
-- migrations leave them (written for baasmigrate's tests from the
-- migration files named below, not copied from them): the columns,
-- constraints and unique indexes that the users sink writes to or that
-- refuse what it writes. Other tables (sessions, mfa_factors, ...) are
-- left out; so are the grants and row level security of
-- 20240612123726_enable_rls_update_grants.
--
-- Followed, in supabase/auth migrations/:
--   00_init_auth_schema.up.sql                       users, users_pkey, users_instance_id_idx
--   20210710035447_alter_users.up.sql                phone (UNIQUE), phone_confirmed_at, phone_change*,
--                                                    confirmed_at renamed email_confirmed_at
--   20210722035447_adds_confirmed_at.up.sql          confirmed_at, generated
--   20210730183235_add_email_change_confirmed.up.sql email_change_token_current, email_change_confirm_status,
--                                                    email_change_token renamed email_change_token_new
--   20210909172000_create_identities_table.up.sql    identities
--   20220114185221_update_user_idx.up.sql            users_instance_id_email_idx on lower(email)
--   20220114185340_add_banned_until.up.sql           banned_until
--   20220323170000_add_user_reauthentication.up.sql  reauthentication_token, reauthentication_sent_at
--   20220429102000_add_unique_idx.up.sql             unique token indexes
--   20221027105023_add_identities_user_id_idx.up.sql identities_user_id_idx
--   20221215195500_modify_users_email_unique_index.up.sql  is_sso_user; users_email_key replaced by
--                                                    users_email_partial_key
--   20221215195800_add_identities_email_column.up.sql identities.email, generated
--   20230116124310_alter_phone_type.up.sql           phone, phone_change as text
--   20230116124412_add_deleted_at.up.sql             deleted_at
--   20231117164230_add_id_pkey_identities.up.sql     identities.id renamed provider_id; uuid id primary
--                                                    key; unique (provider_id, provider)
--   20240214120130_add_is_anonymous_column.up.sql    is_anonymous
CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE auth.users (
    instance_id                 uuid,
    id                          uuid NOT NULL,
    aud                         varchar(255),
    role                        varchar(255),
    email                       varchar(255),
    encrypted_password          varchar(255),
    email_confirmed_at          timestamptz,
    invited_at                  timestamptz,
    confirmation_token          varchar(255),
    confirmation_sent_at        timestamptz,
    recovery_token              varchar(255),
    recovery_sent_at            timestamptz,
    email_change_token_new      varchar(255),
    email_change                varchar(255),
    email_change_sent_at        timestamptz,
    last_sign_in_at             timestamptz,
    raw_app_meta_data           jsonb,
    raw_user_meta_data          jsonb,
    is_super_admin              boolean,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    phone                       text DEFAULT NULL,
    phone_confirmed_at          timestamptz,
    phone_change                text DEFAULT '',
    phone_change_token          varchar(255) DEFAULT '',
    phone_change_sent_at        timestamptz,
    confirmed_at                timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
    email_change_token_current  varchar(255) DEFAULT '',
    email_change_confirm_status smallint DEFAULT 0
        CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2),
    banned_until                timestamptz,
    reauthentication_token      varchar(255) DEFAULT '',
    reauthentication_sent_at    timestamptz,
    is_sso_user                 boolean NOT NULL DEFAULT false,
    deleted_at                  timestamptz,
    is_anonymous                boolean NOT NULL DEFAULT false,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_id_key UNIQUE (id),
    CONSTRAINT users_phone_key UNIQUE (phone)
);
CREATE INDEX users_instance_id_idx ON auth.users (instance_id);
CREATE INDEX users_instance_id_email_idx ON auth.users (instance_id, lower(email));
CREATE UNIQUE INDEX users_email_partial_key ON auth.users (email) WHERE is_sso_user = false;
CREATE UNIQUE INDEX confirmation_token_idx ON auth.users (confirmation_token) WHERE confirmation_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX recovery_token_idx ON auth.users (recovery_token) WHERE recovery_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_current_idx ON auth.users (email_change_token_current) WHERE email_change_token_current !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_new_idx ON auth.users (email_change_token_new) WHERE email_change_token_new !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX reauthentication_token_idx ON auth.users (reauthentication_token) WHERE reauthentication_token !~ '^[0-9 ]*$';
CREATE INDEX users_is_anonymous_idx ON auth.users (is_anonymous);

CREATE TABLE auth.identities (
    provider_id     text NOT NULL,
    user_id         uuid NOT NULL,
    identity_data   jsonb NOT NULL,
    provider        text NOT NULL,
    last_sign_in_at timestamptz,
    created_at      timestamptz,
    updated_at      timestamptz,
    email           text GENERATED ALWAYS AS (lower(identity_data->>'email')) STORED,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    CONSTRAINT identities_pkey PRIMARY KEY (id),
    CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider),
    CONSTRAINT identities_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE INDEX identities_user_id_idx ON auth.identities (user_id);
CREATE INDEX identities_email_idx ON auth.identities (email text_pattern_ops);
