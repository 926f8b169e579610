package supabasetest

import (
	_ "embed"
	"testing"
)

// TablesSchema is the DDL of the public tables SeedTables fills (see its
// comments: every common type, keys of every shape, and objects that
// cannot work outside Supabase).
//
//go:embed tables.sql
var TablesSchema string

// Rows of SeedTables besides the tasks.
const (
	SeedOrgs         = 5
	SeedProjects     = 20
	SeedMeasurements = 7
	SeedEvents       = 56 // 50 generated (10 distinct), 3 equal, 1 more, 2 all-NULL
	SeedWeird        = 3
	SeedReadings     = 1500
)

// TasksTable and the other tables' quoted names, as reports name them.
const (
	TasksTable        = `"public"."tasks"`
	OrgsTable         = `"public"."orgs"`
	ProjectsTable     = `"public"."projects"`
	MeasurementsTable = `"public"."measurements"`
	EventsTable       = `"public"."events_log"`
	WeirdTable        = `"public"."Weird ""Table"".x; DROP"`
	ProfilesTable     = `"public"."profiles"`
	ReadingsTable     = `"public"."readings"`
	EmptyTable        = `"public"."empty_one"`
)

// SeedTables creates TablesSchema's tables and fills them: tasks with
// tasks rows (plus one with every nullable column NULL), each task the
// child of the one before it, SeedReadings readings, and the counts of
// the other Seed constants.
func (p *Project) SeedTables(t testing.TB, tasks int) {
	t.Helper()
	p.Exec(t, TablesSchema)
	p.Exec(t, `INSERT INTO public.orgs (name) SELECT 'org ' || g FROM generate_series(1, 5) g`)
	p.Exec(t, `INSERT INTO public.projects SELECT o.id, 'p-' || g, 'Project ' || g FROM public.orgs o, generate_series(1, 4) g`)
	p.Exec(t, `INSERT INTO public.tasks (org_id, slug, title, mood, moods, tags, grid, score, amount, ratio, real4, small, big, flag,
			born, seen, local_ts, at_time, dur, doc, raw, bytes, addr, net, code, short, priority, period)
		SELECT 1 + g % 5, 'p-' || (1 + g % 4), 'Task ' || g || E'\ttab\nnewline \\ back é',
			(ARRAY['sad', 'ok', 'happy', 'it''s "fine"']::public.mood[])[1 + g % 4], ARRAY['sad', 'it''s "fine"']::public.mood[],
			ARRAY['a', 'b c', NULL, 'd"e'], ARRAY[[1, 2], [3, g]], g * 1.5,
			CASE WHEN g % 10 = 0 THEN 'NaN'::numeric ELSE g::numeric / 7 END, g / 3.0, (g / 7.0)::real, g % 32000, g * 100000000000::bigint, g % 2 = 0,
			date '2020-01-01' + g, timestamptz '2024-05-06 07:08:09.123456+02' + g * interval '1 minute',
			timestamp '2024-01-01 00:00:00.123' + g * interval '1 second', time '12:34:56.5', g * interval '1 hour 2 minutes',
			jsonb_build_object('n', g, 'big', 12345678901234567890, 'nested', jsonb_build_object('a', ARRAY[1, 2])),
			('{"raw": ' || g || ',  "spaces" : true}')::json, decode(md5(g::text), 'hex'), ('10.0.' || (g % 255) || '.1')::inet,
			'192.168.0.0/16', 'abc', 'xy', 1 + g % 9, tstzrange('2024-01-01', 'infinity')
		FROM generate_series(1, $1::int) g`, tasks)
	p.Exec(t, `INSERT INTO public.tasks (org_id, slug, title) VALUES (1, 'p-1', 'nulls')`)
	p.Exec(t, `UPDATE public.tasks SET parent_id = id - 1 WHERE id > 1`)
	p.Exec(t, `INSERT INTO public.readings SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
		CASE WHEN g % 100 = 0 THEN 'NaN' ELSE g / 3.0 END, CASE WHEN g % 7 = 0 THEN NULL ELSE 'r' || g || E'\t\\' END, decode(md5(g::text), 'hex'),
		1 + g % 5, (ARRAY['sad', 'it''s "fine"']::public.mood[])[1 + g % 2]
		FROM generate_series(1, 1500) g`)
	// Statistics for readings only: its partitions come from them, the
	// others' from numbering their rows.
	p.Exec(t, `ANALYZE public.readings`)
	p.Exec(t, `INSERT INTO public.measurements VALUES ('s1', '2024-01-01', 'NaN'), ('s1', '2024-01-02', 'Infinity'), ('s1', '2024-01-03', '-Infinity'),
		('s2', '2024-01-01', 1.000100), ('Ä', '2024-01-01', -0.0), ('a b', '1999-12-31', 123456789012345678901234567890.123456789), ('s10', '2024-01-01', 0)`)
	p.Exec(t, `INSERT INTO public.events_log SELECT timestamptz '2024-01-01 00:00:00+00' + (g % 10) * interval '1 day', 'm' || g % 10, g % 10 FROM generate_series(1, 50) g`)
	p.Exec(t, `INSERT INTO public.events_log VALUES ('2024-01-01', 'dup', 1), ('2024-01-01', 'dup', 1), ('2024-01-01', 'dup', 1), ('2024-01-01', 'dup', 2), (NULL, NULL, NULL), (NULL, NULL, NULL)`)
	p.Exec(t, `INSERT INTO public."Weird ""Table"".x; DROP" VALUES ('a''b"c', 1, 'x y', '{"k": 1}'), (E'\t\n\\', NULL, NULL, NULL), ('ü', 2, 'z', 'null')`)
}
