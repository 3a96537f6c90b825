defmodule MixConsumer.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    Supervisor.start_link([MixConsumer.Mailroom], strategy: :one_for_one, name: MixConsumer.Supervisor)
  end
end

defmodule MixConsumer.Mailroom do
  @moduledoc """
  A GenServer that owns a bounded `:sluice_box` and reads it in batches.

  `post/1` stores a letter in the box from the caller's process; once the
  box holds `@max` letters, each new one drops the oldest (a `:queue` box).
  `collect/0` takes what the box holds.
  """
  use GenServer

  @max 100

  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @doc "The box's handle, for callers that post to it."
  def box, do: GenServer.call(__MODULE__, :box)

  @doc "Stores `letter` in the box, dropping the oldest when the box is full."
  def post(letter), do: :sluice_box.post(box(), letter)

  @doc "Every letter the box holds, oldest first, and how many were dropped."
  def collect, do: GenServer.call(__MODULE__, :collect)

  @impl true
  def init(nil) do
    {:ok, box} = :sluice_box.new(%{max: @max, type: :queue})
    {:ok, box}
  end

  @impl true
  def handle_call(:box, _from, box), do: {:reply, box, box}

  def handle_call(:collect, _from, box) do
    :ok = :sluice_box.active(box)

    receive do
      {:mail, ^box, letters, count, dropped} ->
        {:reply, %{letters: letters, count: count, dropped: dropped}, box}
    after
      5_000 -> {:reply, {:error, :no_mail}, box}
    end
  end
end
