defmodule MixConsumerTest do
  use ExUnit.Case

  test "the dependencies' applications are started with the project" do
    started = for {app, _, _} <- Application.started_applications(), do: app
    assert :sluice in started
    assert :reckon in started
  end

  test "a full queue box drops its oldest letters and counts them" do
    for n <- 1..250, do: MixConsumer.Mailroom.post(n)
    mail = MixConsumer.Mailroom.collect()
    assert mail.letters == Enum.to_list(151..250)
    assert mail.count == 100
    assert mail.dropped == 150
  end

  test "reckon ranks the processes holding the most memory" do
    big = spawn(fn -> hold(:lists.seq(1, 200_000)) end)
    # The heap is built once the process answers.
    send(big, {:ready, self()})
    assert_receive :ready
    top = :reckon.proc_count(:memory, 3)
    assert length(top) == 3
    assert [{^big, _, _} | _] = top
    Process.exit(big, :kill)
  end

  test "a bad option is refused in the caller" do
    assert {:error, {:bad_option, :max}} = :sluice_box.new(%{max: -1})
  end

  defp hold(list) do
    receive do
      {:ready, from} ->
        send(from, :ready)
        hold(list)
    end
  end
end
