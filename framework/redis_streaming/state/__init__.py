"""Keyed state of the stream-processing runtime: stores, their write-back cache and codec."""

from redis_streaming.state.stores import ListState, MapState, StoreSpec, ValueState

__all__ = ["ListState", "MapState", "StoreSpec", "ValueState"]
