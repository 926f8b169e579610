// Package mappingstest holds mapping files that the tests of several
// packages share (mappings, transformers, loaders/postgres), so that a test
// of each layer reads the same mapping rather than a copy of it. It imports
// nothing, so the mappings package's own tests can use it too.
package mappingstest

// Children maps orders to a table with a total column and two child
// tables: items (orders_items: sku text, qty bigint, at timestamptz,
// extra jsonb) and meta.tags (orders_tags, no typed columns).
const Children = `version: 1
schema: public
tables:
  - collection: orders
    table: orders
    id_column: id
    columns:
      - {field: total, column: total, type: bigint}
    children:
      - field: items
        table: orders_items
        columns:
          - {field: sku, column: sku, type: text}
          - {field: qty, column: qty, type: bigint}
          - {field: at, column: at, type: timestamptz}
          - {field: extra, column: extra, type: jsonb}
      - field: meta.tags
        table: orders_tags
`

// ChildrenTwoDepths maps orders to a table whose items (orders_items: sku
// text) have a second-depth child table parts (orders_items_parts: p
// bigint).
const ChildrenTwoDepths = `version: 1
schema: public
tables:
  - collection: orders
    table: orders
    id_column: id
    children:
      - field: items
        table: orders_items
        columns:
          - {field: sku, column: sku, type: text}
        children:
          - field: parts
            table: orders_items_parts
            columns:
              - {field: p, column: p, type: bigint}
`

// References maps posts with two reference columns that declare foreign
// keys, author (to users; key column author_id) and order (to
// users/{}/orders; key columns order_ref_users_id, order_ref_id), then a
// title; users with a name; and users/{}/orders.
const References = `version: 1
schema: public
tables:
  - collection: posts
    table: posts
    id_column: id
    columns:
      - {field: author, column: author, type: text, source: reference, references: users}
      - {field: order, column: order_ref, type: text, source: reference, references: 'users/{}/orders'}
      - {field: title, column: title, type: text}
  - collection: users
    table: users
    id_column: id
    columns:
      - {field: name, column: name, type: text}
  - collection: users/{}/orders
    table: users_orders
    id_column: id
    parent_columns: [users_id]
`
