-- Public tables of a Supabase project, for the tables kind: every common
-- column type, an enum, a domain, generated and identity columns, a
-- sequence, composite keys, a foreign-key chain, a keyless table with
-- duplicate rows, numeric NaN, hostile names, and what cannot work outside
-- Supabase (an RLS policy calling auth.uid(), a default calling it, a
-- trigger whose function does, a foreign key to auth.users).

-- auth.uid() as Supabase defines it: the JWT's subject.
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;

CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "fine"');
CREATE DOMAIN public.positive_int AS integer CHECK (VALUE > 0);
CREATE SEQUENCE public.ticket_seq START 1000 INCREMENT 7;

CREATE TABLE public.orgs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.projects (
  org_id bigint NOT NULL REFERENCES public.orgs (id) ON DELETE CASCADE,
  slug varchar(40) NOT NULL,
  title text NOT NULL CHECK (title <> ''),
  PRIMARY KEY (org_id, slug)
);

CREATE TABLE public.tasks (
  id bigserial PRIMARY KEY,
  org_id bigint NOT NULL,
  slug varchar(40) NOT NULL,
  parent_id bigint REFERENCES public.tasks (id),
  title text NOT NULL,
  title_upper text GENERATED ALWAYS AS (upper(title)) STORED,
  owner uuid DEFAULT auth.uid(),
  mood public.mood NOT NULL DEFAULT 'ok',
  moods public.mood[],
  tags text[] NOT NULL DEFAULT '{}',
  grid integer[][],
  score numeric(12, 3),
  amount numeric,
  ratio double precision,
  real4 real,
  small smallint,
  big bigint,
  flag boolean,
  born date,
  seen timestamptz,
  local_ts timestamp(3),
  at_time time,
  dur interval,
  doc jsonb,
  raw json,
  bytes bytea,
  addr inet,
  net cidr,
  code char(3),
  short varchar(5),
  ident uuid NOT NULL DEFAULT gen_random_uuid(),
  priority public.positive_int,
  ticket bigint DEFAULT nextval('public.ticket_seq'),
  period tstzrange,
  FOREIGN KEY (org_id, slug) REFERENCES public.projects (org_id, slug)
);
CREATE INDEX tasks_title_lower ON public.tasks (lower(title));
CREATE INDEX tasks_open ON public.tasks (org_id) WHERE flag;
CREATE UNIQUE INDEX tasks_ident ON public.tasks (ident);

-- Numeric NaN and infinities, keyed by a composite of text and date.
CREATE TABLE public.measurements (
  sensor text NOT NULL,
  day date NOT NULL,
  value numeric NOT NULL,
  PRIMARY KEY (sensor, day)
);

-- Built-in types, a domain and an enum: moves in COPY's binary format
-- (tasks, with an array of an enum, moves in text).
CREATE TABLE public.readings (
  id bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  value numeric(10, 4),
  note text,
  raw bytea,
  level public.positive_int,
  mood public.mood
);

-- No key: duplicate rows are data.
CREATE TABLE public.events_log (
  happened timestamptz,
  message text,
  n integer
);

-- A profile per Auth user, as Supabase apps have.
CREATE TABLE public.profiles (
  user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  display_name text
);

-- Hostile names.
CREATE TABLE public."Weird ""Table"".x; DROP" (
  "key ""id""" text PRIMARY KEY,
  "select" integer,
  "Col With Space" text,
  "ÄÖ ü" jsonb
);

CREATE UNIQUE INDEX "idx ""weird"" ON x" ON public."Weird ""Table"".x; DROP" ("select", "Col With Space");

CREATE TABLE public.empty_one (id integer PRIMARY KEY);

-- Supabase-only objects.
ALTER TABLE public.tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own tasks" ON public.tasks FOR SELECT USING (owner = auth.uid());
CREATE POLICY "everyone reads orgs" ON public.orgs FOR SELECT USING (true);
CREATE FUNCTION public.set_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.owner := auth.uid();
  RETURN NEW;
END $$;
CREATE TRIGGER tasks_owner BEFORE INSERT ON public.tasks FOR EACH ROW EXECUTE FUNCTION public.set_owner();
CREATE FUNCTION public.add_one(i integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT i + 1 $$;
CREATE VIEW public.task_titles AS SELECT id, title FROM public.tasks;
