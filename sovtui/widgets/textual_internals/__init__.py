"""Provides OneLineTable: a DataTable whose fast paths for one-line rows override Textual's private internals.

Checked against Textual 8.2.8. Everything in this package (rows.py, render.py) that relies on a private
Textual name is listed here (tests/ui/test_textual_internals.py fails, naming the piece, when one goes missing):

- modules: ``textual._segment_tools.line_crop``, ``textual._two_way_dict.TwoWayDict``,
  ``textual.widgets._data_table``: ``_EMPTY_TEXT``, ``RowRenderables``, ``default_cell_formatter``
- ``TwoWayDict._forward`` and ``TwoWayDict._reverse`` (row locations built in one pass);
  ``LRUCache._cache`` (its linked ring, broken before a clear);
  ``StringKey`` hashing and comparing as its ``value`` (a row key that is also a str)
- DataTable state read or written: ``_data``, ``_row_locations``, ``_column_locations``,
  ``_update_count``, ``_require_update_dimensions``, ``_new_rows``, ``_label_column``,
  ``_label_column_key``, ``_labelled_row_exists``, ``_header_row_key``, ``_row_render_cache``,
  ``_cell_render_cache``, ``_row_renderable_cache``, ``_line_cache``, ``_show_hover_cursor``,
  ``_pseudo_class_state``, ``_row_label_column_width``, ``_total_row_height``
- reactive storage read without the descriptor: ``_reactive_fixed_rows``,
  ``_reactive_fixed_columns``, ``_reactive_header_height``, ``_reactive_cell_padding``
- DataTable methods called: ``_highlight_cursor``, ``_get_offsets``, ``_get_row_style``,
  ``_get_styles_to_render_cell``, ``_get_row_renderables``
- DataTable methods overridden: ``_y_offsets``, ``_get_row_region``, ``_update_dimensions``,
  ``_clear_caches``, ``_compute_row_renderables``, ``_render_line``, ``_render_line_in_row``,
  ``_render_cell``
- Widget: ``_size``, ``_anchored``, ``_scroll_update`` (overridden)

The overrides apply while every row is one line high without a label (``_simple_rows``);
otherwise DataTable's own code runs. What they draw is what DataTable draws, cell for cell.
"""

from .render import OneLineTable
from .rows import StrRowKey

__all__ = ["OneLineTable", "StrRowKey"]
